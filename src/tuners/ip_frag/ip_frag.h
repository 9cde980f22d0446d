/* SPDX-License-Identifier: GPL-2.0 */
/* The ip_frag tuner's scenarios and event payload, shared by BPF and index.ts. */
#ifndef IP_FRAG_H
#define IP_FRAG_H

enum ip_frag_scenario {
	IP_FRAG_SCENARIO_INCREASE = 0,	/* reassembly memory full: raise *frag_high_thresh */
	IP_FRAG_SCENARIO_DECREASE = 1,	/* failures rise with the threshold: lower it */
};

enum ip_frag_family {
	IP_FRAG_FAMILY_IPV4 = 4,	/* net.ipv4.ipfrag_high_thresh */
	IP_FRAG_FAMILY_IPV6 = 6,	/* net.ipv6.ip6frag_high_thresh */
};

/*
 * event.old_values[0]: fragments dropped for want of reassembly memory in
 * the namespace since its last event of this family; event.data:
 */
struct ip_frag_event_data {
	__u32 family;		/* enum ip_frag_family */
	__u32 pad;
	__s64 mem;		/* bytes the namespace's reassembly queues held at the drop */
	__s64 high_thresh;	/* the namespace's threshold at the drop */
	__u64 window_ns;	/* time since the previous event of this family */
};

#endif
