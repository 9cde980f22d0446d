// SPDX-License-Identifier: GPL-2.0
/*
 * Sees every sysctl write on the system: cgroup/sysctl on the root cgroup v2
 * runs for tasks in every cgroup below it. Writes are rare, so each one by a
 * task other than the daemon is posted; user space decides whether a tuner
 * manages that sysctl.
 */
#include "bpftune.bpf.h"
#include "sysctl.h"

SEC("cgroup/sysctl")
int sysctl_write(struct bpf_sysctl *ctx)
{
	struct bpftune_event event = {};
	struct task_struct *task;

	if (!ctx->write)
		return 1;
	if ((bpf_get_current_pid_tgid() >> 32) == bpftune_daemon_tgid)
		return 1;

	task = bpf_get_current_task_btf();
	/* The writer's namespace: /proc/sys/net resolves to it for the write. */
	bpftune_event_init(&event, SYSCTL_SCENARIO_WRITE, bpftune_task_net(task));
	bpf_sysctl_get_name(ctx, (char *)event.data, SYSCTL_NAME_LEN, 0);
	bpf_get_current_comm(event.data + SYSCTL_COMM_OFFSET, SYSCTL_COMM_LEN);
	bpftune_post(&event);
	return 1; /* never block the write: we only watch */
}
