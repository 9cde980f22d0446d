/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the tcp_buffer tuner's BPF side posts. Events carry an event kind in
 * struct bpftune_event.scenario_id (the TypeScript side maps kinds to the
 * declared scenarios) and struct tcp_buffer_data in .data. The build
 * generates tcp_buffer.contract.ts from this object's BTF for index.ts.
 */
#ifndef TCP_BUFFER_TUNER_H
#define TCP_BUFFER_TUNER_H

enum tcp_buffer_event {
	/* old_values: tcp_rmem; new_values: tcp_rmem with [2] grown by one step. */
	TCP_BUFFER_EVENT_RMEM_NEAR_MAX = 0,
	/* old_values: tcp_wmem; new_values: tcp_wmem with [2] grown by one step. */
	TCP_BUFFER_EVENT_WMEM_NEAR_MAX = 1,
	/* old_values: tcp_mem (pages); new_values[0]: pages allocated to TCP. */
	TCP_BUFFER_EVENT_MEM_EXCEEDED = 2,
};

struct tcp_buffer_data {
	__u32 rtt_us;		/* the socket's smoothed RTT (receiver: its RTT estimate) */
	__s32 sk_buf;		/* sk_rcvbuf or sk_sndbuf when seen */
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 pad;
	__u32 tcp_moderate_rcvbuf;
	/*
	 * Why the limit matters (tcp_info's chrono stats, the sender's bytes in
	 * flight and the receiver's demand), read only once the cheap test has
	 * passed:
	 * send side: of the sender's busy time (jiffies, busy + rwnd- + sndbuf-
	 * limited), the parts it was limited by its send buffer and by the
	 * receiver's window; and the bytes the path holds per round trip (in
	 * flight, scaled by min RTT / smoothed RTT so a standing queue is not
	 * counted);
	 * receive side: bytes the path carries per round trip (the most read in
	 * one receiver RTT, rcvq_space.space, scaled from the receiver's RTT
	 * estimate to the path's smoothed RTT): what the window must hold.
	 */
	__u32 busy;		/* send: jiffies busy in all (0: unknown) */
	__u32 sndbuf_limited;	/* send: jiffies of those limited by the send buffer */
	__u32 bdp;		/* receive: bytes per path RTT (0: unknown) */
	/*
	 * receive: the most read in one receiver RTT (rcvq_space.space); with
	 * rtt_us, the rate the socket was reading at when it asked: the
	 * baseline its growth is judged against.
	 */
	__u32 rcv_space;
	__u32 rwnd_limited;	/* send: jiffies of busy limited by the receiver's window */
	__u32 pipe;		/* send: bytes in flight per path RTT (0: unknown) */
};

#endif
