// SPDX-License-Identifier: GPL-2.0
/*
 * Sample tuner, BPF side: a listen() asking for a longer accept queue than
 * net.core.somaxconn is silently truncated by the kernel. Seen at syscall
 * entry, where the caller's namespace and its somaxconn are at hand.
 */
#include "bpftune.bpf.h"

enum listen_backlog_scenario {
	LISTEN_BACKLOG_SCENARIO_TRUNCATED = 0,
};
/* Keeps the enum in BTF, from which the build generates listen_backlog.contract.ts. */
BPFTUNE_CONTRACT_ENUM(listen_backlog_scenario);
/*
 * Backlogs above this are "as long as allowed" (INT_MAX, as iperf3 and
 * others pass), not a sized demand: growing somaxconn for them would only
 * ever end at the cap.
 */
#define LISTEN_BACKLOG_MAX 65535
/* listen() is rare; this only stops a burst of listeners posting one event each. */
#define LISTEN_BACKLOG_INTERVAL_NS (10 * 1000 * 1000ULL)

SEC("tracepoint/syscalls/sys_enter_listen")
int listen_backlog(struct trace_event_raw_sys_enter *ctx)
{
	int backlog = (int)ctx->args[1];
	struct net *net = bpftune_task_net(bpf_get_current_task_btf());
	int somaxconn = BPF_CORE_READ(net, core.sysctl_somaxconn);
	struct bpftune_event event = {};

	if (backlog <= somaxconn || backlog > LISTEN_BACKLOG_MAX)
		return 0;
	if (bpftune_rate_limited(bpftune_net_cookie(net), LISTEN_BACKLOG_SCENARIO_TRUNCATED,
				 LISTEN_BACKLOG_INTERVAL_NS))
		return 0;
	bpftune_event_init(&event, LISTEN_BACKLOG_SCENARIO_TRUNCATED, net);
	event.old_values[0] = somaxconn;
	event.new_values[0] = backlog;
	bpftune_post(&event);
	return 0;
}
