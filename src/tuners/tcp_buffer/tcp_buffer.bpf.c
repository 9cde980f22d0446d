// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_buffer tuner, BPF side. Three tracepoints:
 *  - tcp:tcp_rcv_space_adjust (every read from a TCP socket): sk_rcvbuf has
 *    grown to within one learning step of tcp_rmem[2] in its namespace;
 *  - tcp:tcp_sendmsg_locked (every send): sk_sndbuf likewise against
 *    tcp_wmem[2]. That tracepoint is new (not in 6.1 or 6.12): there the
 *    daemon loads the fentry variant on the function itself, or the kprobe
 *    one where trampolines are refused (index.ts declares the order);
 *  - sock:sock_exceed_buf_limit (an allocation refused for memory): how much
 *    TCP holds against tcp_mem.
 * The first two fire up to ~100k times a second under bulk traffic, so they
 * test the cheapest condition first (two loads and a compare, no map). A
 * socket sitting at its limit passes that test on every call until the daemon
 * has raised the limit, so the next check is an inlined array lookup: "this
 * namespace already reported this very limit a moment ago". Only a different
 * namespace or limit reaches the per-namespace rate limiter (a hash lookup).
 */
#include "bpftune.bpf.h"
#include "tcp_buffer.h"

#define SOCK_SNDBUF_LOCK	1
#define SOCK_RCVBUF_LOCK	2
#define IPPROTO_TCP		6

/*
 * sk_userlocks is a plain u8 since 6.2 but a 4-bit bitfield before (6.1:
 * "u8 sk_userlocks:4" after four 1-bit flags): a plain load, even relocated,
 * would read the byte holding it and test sk_gso_disabled instead. The
 * bitfield macros relocate offset, size and shifts, so they read it right on
 * both layouts. _PROBED for the kprobe variant, whose sk is not BTF-typed.
 */
#define SK_USERLOCKS(sk)	((__u8)BPF_CORE_READ_BITFIELD(sk, sk_userlocks))
#define SK_USERLOCKS_PROBED(sk)	((__u8)BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks))

/*
 * One event per namespace and direction per interval. Short, so that growth
 * can follow a connection step by step (each step needs the kernel to grow
 * the socket up to the new limit first, about one RTT), yet a flood of calls
 * is at most 40 events a second per namespace.
 */
#define TCP_BUFFER_INTERVAL_NS	(25 * 1000 * 1000ULL)
/* Refused allocations come in bursts; the daemon's memory check polls on a slow timer anyway. */
#define TCP_BUFFER_MEM_INTERVAL_NS	(1000 * 1000 * 1000ULL)

/*
 * The last limit posted per direction (index: event kind), and where. The
 * daemon clears it after each 2 s tick in which something was posted, so the
 * same limit is posted again then: it
 * may have declined it (memory pressure, latency hold) and may now accept.
 * (No clock here: tracing programs may not use the coarse one, and the fine
 * one would cost more than everything else on this path.)
 */
struct last_post {
	__u64 net;	/* struct net address: comparing it needs no read through it */
	__s32 limit;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct last_post);
} last_posted SEC(".maps");

BPFTUNE_CONTRACT_STRUCT(tcp_buffer_data);
BPFTUNE_CONTRACT_ENUM(tcp_buffer_event);

static __always_inline __u32 socket_rtt_us(const struct sock *sk, bool receiver)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 rtt = 0;

	/* A pure receiver's srtt only reflects the handshake; its own estimate follows the data. */
	if (receiver)
		rtt = BPF_CORE_READ(tp, rcv_rtt_est.rtt_us);
	if (!rtt)
		rtt = BPF_CORE_READ(tp, srtt_us);
	return rtt >> 3;
}

/* True when this (namespace, limit) was posted since the daemon last cleared it; else claims it. */
static __always_inline bool already_posted(__u32 kind, const struct net *net, int limit)
{
	struct last_post *last = bpf_map_lookup_elem(&last_posted, &kind);

	if (!last)
		return true;
	if (last->net == (__u64)net && last->limit == limit)
		return true;
	if (bpftune_rate_limited(bpftune_net_cookie((struct net *)net), kind, TCP_BUFFER_INTERVAL_NS))
		return true;
	last->net = (__u64)net;
	last->limit = limit;
	return false;
}

static __always_inline void post_near_max(const struct sock *sk, struct net *net,
					  __u32 kind, const int limits[3], int sk_buf)
{
	struct bpftune_event event = {};
	struct tcp_buffer_data *data = (struct tcp_buffer_data *)event.data;
	int i;

	bpftune_event_init(&event, kind, net);
	for (i = 0; i < 3; i++) {
		event.old_values[i] = limits[i];
		event.new_values[i] = limits[i];
	}
	event.new_values[2] = bpftune_grow(limits[2]);
	data->rtt_us = socket_rtt_us(sk, kind == TCP_BUFFER_EVENT_RMEM_NEAR_MAX);
	data->sk_buf = sk_buf;
	/* Read with CO-RE helpers: the kprobe variant's pointers are not BTF-typed. */
	data->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	data->tcp_moderate_rcvbuf = BPF_CORE_READ(net, ipv4.sysctl_tcp_moderate_rcvbuf);
	bpftune_post(&event);
}

/*
 * Not tcp:tcp_rcvbuf_grow, although it fires far less often: it fires only
 * when the kernel's own demand estimate (bytes read per RTT) grows, and a
 * flow held back by its buffer reads the same amount every RTT, so it can
 * stall after a step or two. tcp_rcv_space_adjust runs on every read.
 */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tcp_buffer_rcv, struct sock *sk)
{
	struct net *net = sk->__sk_common.skc_net.net;
	int rcvbuf = sk->sk_rcvbuf;
	int rmem_max = net->ipv4.sysctl_tcp_rmem[2];
	int rmem[3];

	if (!bpftune_nearly_full(rcvbuf, rmem_max))
		return 0;
	/* SO_RCVBUF fixes the size: the limit is not what holds this socket back. */
	if (SK_USERLOCKS(sk) & SOCK_RCVBUF_LOCK)
		return 0;
	if (already_posted(TCP_BUFFER_EVENT_RMEM_NEAR_MAX, net, rmem_max))
		return 0;
	rmem[0] = net->ipv4.sysctl_tcp_rmem[0];
	rmem[1] = net->ipv4.sysctl_tcp_rmem[1];
	rmem[2] = rmem_max;
	post_near_max(sk, net, TCP_BUFFER_EVENT_RMEM_NEAR_MAX, rmem, rcvbuf);
	return 0;
}

/*
 * The sender check after the cheap test passed: the caller read the hot
 * fields its own way (direct loads where the pointer is BTF-typed).
 */
static __always_inline void snd_near_max(const struct sock *sk, struct net *net, int sndbuf, int wmem_max,
					 __u8 userlocks)
{
	int wmem[3];

	if (userlocks & SOCK_SNDBUF_LOCK)
		return;
	if (already_posted(TCP_BUFFER_EVENT_WMEM_NEAR_MAX, net, wmem_max))
		return;
	wmem[0] = BPF_CORE_READ(net, ipv4.sysctl_tcp_wmem[0]);
	wmem[1] = BPF_CORE_READ(net, ipv4.sysctl_tcp_wmem[1]);
	wmem[2] = wmem_max;
	post_near_max(sk, net, TCP_BUFFER_EVENT_WMEM_NEAR_MAX, wmem, sndbuf);
}

/* The cheap test with direct loads, for the variants whose sk is BTF-typed (tp_btf, fentry). */
static __always_inline void snd_check(const struct sock *sk)
{
	struct net *net = sk->__sk_common.skc_net.net;
	int sndbuf = sk->sk_sndbuf;
	int wmem_max = net->ipv4.sysctl_tcp_wmem[2];

	if (bpftune_nearly_full(sndbuf, wmem_max))
		snd_near_max(sk, net, sndbuf, wmem_max, SK_USERLOCKS(sk));
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(tcp_buffer_snd, const struct sock *sk)
{
	snd_check(sk);
	return 0;
}

/* The function the tracepoint sits in, for kernels without the tracepoint (6.1, 6.12). */
SEC("fentry/tcp_sendmsg_locked")
int BPF_PROG(tcp_buffer_snd_fentry, struct sock *sk)
{
	snd_check(sk);
	return 0;
}

/* Last resort (no trampolines): every read goes through bpf_probe_read_kernel. */
SEC("kprobe/tcp_sendmsg_locked")
int BPF_KPROBE(tcp_buffer_snd_kprobe, struct sock *sk)
{
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	int sndbuf = BPF_CORE_READ(sk, sk_sndbuf);
	int wmem_max = BPF_CORE_READ(net, ipv4.sysctl_tcp_wmem[2]);

	if (bpftune_nearly_full(sndbuf, wmem_max))
		snd_near_max(sk, net, sndbuf, wmem_max, SK_USERLOCKS_PROBED(sk));
	return 0;
}

SEC("tp_btf/sock_exceed_buf_limit")
int BPF_PROG(tcp_buffer_mem, struct sock *sk, struct proto *prot, long allocated, int kind)
{
	struct net *net = sk->__sk_common.skc_net.net;
	struct bpftune_event event = {};
	long tcp_mem[3] = {};
	int i;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (bpftune_rate_limited(bpftune_net_cookie(net), TCP_BUFFER_EVENT_MEM_EXCEEDED,
				 TCP_BUFFER_MEM_INTERVAL_NS))
		return 0;
	bpf_probe_read_kernel(tcp_mem, sizeof(tcp_mem), prot->sysctl_mem);
	bpftune_event_init(&event, TCP_BUFFER_EVENT_MEM_EXCEEDED, net);
	for (i = 0; i < 3; i++)
		event.old_values[i] = tcp_mem[i];
	event.new_values[0] = allocated;
	bpftune_post(&event);
	return 0;
}
