/* SPDX-License-Identifier: GPL-2.0 */
/* The udp_buffer tuner's scenarios and event payload, shared by BPF and index.ts. */
#ifndef UDP_BUFFER_H
#define UDP_BUFFER_H

enum udp_buffer_scenario {
	UDP_BUFFER_SCENARIO_INCREASE = 0,	/* receive buffers too small: grow rmem_max/rmem_default */
	UDP_BUFFER_SCENARIO_DECREASE = 1,	/* memory nearly exhausted: shrink them */
	UDP_BUFFER_SCENARIO_MEM_PRESSURE = 2,	/* UDP memory near udp_mem[1]: raise udp_mem */
	UDP_BUFFER_SCENARIO_MEM_EXHAUSTION = 3,	/* UDP memory near udp_mem[2] */
};

/* Why __udp_enqueue_schedule_skb() refused a datagram (the tracepoint's rc). */
enum udp_buffer_drop_kind {
	UDP_BUFFER_DROP_KIND_RCVBUF = 1,	/* -ENOMEM: the socket's receive queue was at sk_rcvbuf */
	UDP_BUFFER_DROP_KIND_MEMORY = 2,	/* -ENOBUFS: UDP memory accounting (udp_mem) refused it */
};

/*
 * event.old_values[0]: drops of this kind in the namespace since its last
 * event; event.data:
 */
struct udp_buffer_event_data {
	__u32 drop_kind;	/* enum udp_buffer_drop_kind */
	__u32 family;		/* AF_INET or AF_INET6 of the dropping socket */
	__s32 rcvbuf;		/* that socket's sk_rcvbuf, bytes */
	__u32 rcvbuf_locked;	/* 1 when set with SO_RCVBUF (rmem_default does not apply) */
	__s64 memory_allocated;	/* UDP memory in pages when the drop happened */
	__u64 window_ns;	/* time since the namespace's previous event of this kind */
};

#endif
