/* SPDX-License-Identifier: GPL-2.0 */
/* The net_buffer tuner's scenarios and event payload, shared by BPF and index.ts. */
#ifndef NET_BUFFER_H
#define NET_BUFFER_H

enum net_buffer_scenario {
	NET_BUFFER_SCENARIO_BACKLOG_DROPS = 0,
	NET_BUFFER_SCENARIO_FLOW_LIMIT = 1,
	NET_BUFFER_SCENARIO_BUDGET_INCREASE = 2,
	NET_BUFFER_SCENARIO_BUDGET_DECREASE = 3,
};

/* event.old_values[0]: drops counted in the window; event.data: */
struct net_buffer_event_data {
	__u32 cpu;		/* CPU whose enqueue failed: the one skb_flow_limit() checks */
	__u32 threshold;	/* drops per window that were allowed (netdev_max_backlog / 32) */
	__u64 window_ns;	/* how long the window had run when the threshold was crossed */
};

#endif
