// SPDX-License-Identifier: GPL-2.0
/*
 * Sees every sysctl write on the system: cgroup/sysctl on the root cgroup v2
 * runs for tasks in every cgroup below it. Writes are rare, so each one by a
 * task other than the daemon is posted; user space decides whether a tuner
 * manages that sysctl.
 */
#include "bpftune.bpf.h"
#include "sysctl.h"

BPFTUNE_CONTRACT_STRUCT(sysctl_event_data);
BPFTUNE_CONTRACT_ENUM(sysctl_scenario);
BPFTUNE_CONTRACT_ENUM(sysctl_sizes);

SEC("cgroup/sysctl")
int sysctl_write(struct bpf_sysctl *ctx)
{
	struct bpftune_event event = {};
	struct sysctl_event_data *data = (void *)event.data;
	struct task_struct *task;

	if (!ctx->write)
		return 1;
	if ((bpf_get_current_pid_tgid() >> 32) == bpftune_daemon_tgid)
		return 1;

	task = bpf_get_current_task_btf();
	/* The writer's namespace: /proc/sys/net resolves to it for the write. */
	bpftune_event_init(&event, SYSCTL_SCENARIO_WRITE, bpftune_task_net(task));
	bpf_sysctl_get_name(ctx, data->name, sizeof(data->name), 0);
	bpf_get_current_comm(data->comm, sizeof(data->comm));
	bpftune_post(&event);
	return 1; /* never block the write: we only watch */
}
