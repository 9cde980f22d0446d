/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the tcp_conn BPF side and its TypeScript side share: scenario ids,
 * algorithm ids, the remote-host key of the learner's choice map, and the
 * payload in struct bpftune_event.data. The build generates
 * tcp_conn.contract.ts from this object's BTF for the TypeScript side.
 */
#ifndef TCP_CONN_H
#define TCP_CONN_H

/*
 * Event kinds: a loss switch (logged), a measurement for the learner, and a
 * learned choice the kernel refused to set.
 */
enum tcp_conn_scenario {
	TCP_CONN_SCENARIO_LOSS = 0,
	TCP_CONN_SCENARIO_SAMPLE = 1,
	TCP_CONN_SCENARIO_SET_FAILED = 2,
};

/* Index into tcp_conn_alg_names; 0 is "something else" (not ours to rate). */
enum tcp_conn_alg {
	TCP_CONN_ALG_OTHER = 0,
	TCP_CONN_ALG_RENO = 1,
	TCP_CONN_ALG_CUBIC = 2,
	TCP_CONN_ALG_BBR = 3,
	TCP_CONN_ALG_COUNT = 4,
};

/*
 * The strategy user space runs (the one entry of tcp_conn_mode), taken by
 * each connection at establishment and kept for its life, so that its
 * measurement at close counts for the strategy that steered it.
 */
enum tcp_conn_strategy {
	/* the learner's choice for hosts it steers; the loss rule for the others */
	TCP_CONN_STRATEGY_LEARNED = 0,
	/* the loss rule alone: bbr after retransmissions, as the reference does */
	TCP_CONN_STRATEGY_BBR_ON_LOSS = 1,
	/* nothing: the namespace default, measured as the baseline */
	TCP_CONN_STRATEGY_DEFAULT = 2,
};

/*
 * Slots of the tcp_conn_counts array, read by user space for the summary:
 * one per algorithm id (connections bpftune set that algorithm on), then
 * connections given TCP_THIN_LINEAR_TIMEOUTS.
 */
enum tcp_conn_count {
	TCP_CONN_COUNT_THIN_LTO = TCP_CONN_ALG_COUNT,
	TCP_CONN_COUNTS
};

/*
 * A remote host: the gateway a connection is routed through, or the peer
 * itself when it is on a directly connected network, in one namespace.
 * IPv4 addresses (also an IPv4 peer of a dual-stack socket) are in addr[0]
 * (network byte order), the rest zero, and family is AF_INET.
 */
struct tcp_conn_remote {
	__u64 netns_cookie;
	__u32 family;
	__u32 addr[4];
	__u32 pad;
};

/* The learner's choice for a remote, written by user space. */
struct tcp_conn_choice {
	__u32 alg;
};

/* In bpftune_event.data. */
struct tcp_conn_event_data {
	struct tcp_conn_remote remote;
	__u32 peer[4];		/* the peer address, in remote.family form */
	__u32 alg;		/* in use at close; for a switch, the one set */
	__u32 initial_alg;	/* before a loss switch; the learner's choice (0: none) at close */
	__u32 learned;		/* 1: the learner chose initial_alg */
	__s32 setsockopt_err;	/* bpf_setsockopt result when setting alg */
	__u32 min_rtt_us;
	__u32 total_retrans;
	__u32 segs_out;
	__u32 data_segs_out;
	__u32 strategy;		/* enum tcp_conn_strategy the connection was established under */
	__u32 pad;
	__u64 bytes_acked;
	__u64 duration_us;
};

#endif
