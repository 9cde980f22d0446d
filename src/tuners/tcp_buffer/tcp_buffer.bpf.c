// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_buffer tuner, BPF side. Three tracepoints:
 *  - tcp:tcp_rcvbuf_grow (a reader's demand grew; 6.16 and later), else
 *    tcp:tcp_rcv_space_adjust (every read from a TCP socket): sk_rcvbuf has
 *    grown, or is about to, to within one learning step of tcp_rmem[2] in
 *    its namespace;
 *  - tcp:tcp_sendmsg_locked (every send): sk_sndbuf likewise against
 *    tcp_wmem[2]. That tracepoint is new (not in 6.1 or 6.12): there the
 *    daemon loads the fentry variant on the function itself, or the kprobe
 *    one where trampolines are refused (index.ts declares the order);
 *  - sock:sock_exceed_buf_limit (an allocation refused for memory): how much
 *    TCP holds against tcp_mem.
 * The per-call ones fire up to ~100k times a second under bulk traffic, so they
 * test the cheapest condition first (two loads and a compare, no map). A
 * socket sitting at its limit passes that test on every call until the daemon
 * has raised the limit, so the next check is an inlined array lookup: "this
 * namespace already reported this very limit a moment ago", or "already
 * judged it not worth reporting, a moment ago" (a jiffies load). Only a
 * different namespace or limit reaches the per-namespace rate limiter (a hash
 * lookup), and only then is the socket asked whether the limit really holds
 * it back:
 *  - send: either of two readings says the send buffer holds the sender back.
 *    (1) tcp_info's chrono stats: the kernel accounts a sender's busy time as
 *    plain busy, limited by the receive window, or limited by the send
 *    buffer (TCP_CHRONO_SNDBUF_LIMITED: out of data to send because the
 *    application could not queue more); a sender limited by its send buffer
 *    for at least 1/8 of its busy time asks for more. (2) The path's share of
 *    the buffer: the bytes in flight scaled by min RTT / smoothed RTT (what
 *    the path itself holds per round trip, a standing queue not counted);
 *    when that reaches 1/4 of tcp_wmem[2] (the buffer holds about 2/3 of it
 *    in data, less its overhead), and the receiver's window limited the
 *    sender less than half its busy time, the buffer is what bounds the
 *    window. (1) alone misses the commonest case: the kernel starts
 *    SNDBUF_LIMITED only when everything queued has been sent at the moment
 *    it checks, and a paced sender (BBR) nearly always has a tail waiting for
 *    its pacing slot. On a 40 ms path a bulk sender at a 32 MiB tcp_wmem[2]
 *    had 22 MB in flight, its buffer holding only that, and the stats said
 *    limited 0.6 % of its busy time; at 48-64 MiB it sent 1.4-1.7 times as
 *    fast, and above that it lost segments: steps the daemon's verifier
 *    undoes one at a time (bench/results/tcp_buffer-gain-ab.md). Neither
 *    fires for a bulk sender on a fast local path, which sits at
 *    tcp_wmem[2] without being limited by it (a few tens of KB per round
 *    trip), nor for one whose own qdisc or a queue downstream is the
 *    bottleneck (its unsent tail keeps SNDBUF_LIMITED off; the queue is in
 *    its smoothed RTT, not its min RTT): more buffer would only lengthen its
 *    queue;
 *  - receive: the bandwidth-delay product. rcvq_space.space is the most the
 *    application read in one receiver RTT (the kernel's own demand estimate);
 *    scaled to the path's smoothed RTT it is what the window must hold per
 *    round trip. Only when that reaches 1/4 of tcp_rmem[2] (the window at the
 *    limit is about half of it, the rest being overhead) is the limit what
 *    holds the flow back. On a 0.04 ms veth path it never is: the kernel's
 *    auto-tuning grows the buffer to the limit there, but the path carries a
 *    few tens of KB per round trip.
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
	/*
	 * 0: posted (wait for the daemon to clear it). Else the limit was judged
	 * not to hold the socket back: jiffies (low 32 bits) from which to ask again.
	 */
	__u32 recheck;
	/*
	 * Receive side: the record (most bytes read in one receiver RTT) that
	 * verdict was judged on. A socket with a larger one is asked at once: the
	 * verdict scales with the record, and a connection still in slow start
	 * when first judged would otherwise wait out the whole hold.
	 */
	__u32 judged_record;
	/*
	 * Per-read hook only (no record given): jiffies from which the record may
	 * be read again while the verdict stands. Reading it is a helper call
	 * (tcp_sock lies beyond the BTF-typed sock), too dear for every read of a
	 * socket sitting at its limit; once per few jiffies delays a re-ask by at
	 * most that.
	 */
	__u32 record_read_at;
};

/* How long a "not held back" verdict stands: 64 jiffies, 64-256 ms depending on HZ. */
#define TCP_BUFFER_RECHECK_JIFFIES	64
/* Per-read hook: how often a held socket's record is read, 4 jiffies (4-16 ms). */
#define TCP_BUFFER_RECORD_READ_JIFFIES	4
/* Send: limited by the send buffer for at least 1/SNDBUF_SHARE of busy time. */
#define TCP_BUFFER_SNDBUF_SHARE		8
/* Both sides: bytes per path RTT of at least 1/BDP_SHARE of tcp_rmem[2] (tcp_wmem[2]). */
#define TCP_BUFFER_BDP_SHARE		4
/* Send: the path reading counts while the receiver's window limited less than 1/RWND_SHARE of busy time. */
#define TCP_BUFFER_RWND_SHARE		2

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

/* The receive record as path_bdp() takes it: the new one, or 0 to read rcvq_space.space. */
static __always_inline __u32 rcv_record(const struct sock *sk, __u32 record)
{
	return record ? record : BPF_CORE_READ((const struct tcp_sock *)sk, rcvq_space.space);
}

/*
 * The slot to record this (namespace, limit) in, or NULL when it was posted
 * since the daemon last cleared it, judged not worth posting a moment ago, or
 * the namespace's rate limit says wait. For the receive side, rcv_sk is the
 * socket and *record its record as for path_bdp(): a record larger than the
 * one the standing "not held back" was judged on is asked about at once (read
 * here only then, and left in *record for the caller). The send side passes
 * NULL: its verdict waits out the hold. The per-read hook, which gives no
 * record, reads it at most once per TCP_BUFFER_RECORD_READ_JIFFIES.
 */
static __always_inline struct last_post *post_slot(__u32 kind, const struct net *net, int limit,
						   const struct sock *rcv_sk, __u32 *record)
{
	struct last_post *last = bpf_map_lookup_elem(&last_posted, &kind);

	if (!last)
		return NULL;
	if (last->net == (__u64)net && last->limit == limit) {
		if (!last->recheck)
			return NULL;
		/* bpf_jiffies64() is inlined to a load on 64-bit JITs. */
		__u32 now = (__u32)bpf_jiffies64();

		if ((__s32)(now - last->recheck) < 0) {
			if (!rcv_sk)
				return NULL;
			if (!*record) {
				if ((__s32)(now - last->record_read_at) < 0)
					return NULL;
				last->record_read_at = now + TCP_BUFFER_RECORD_READ_JIFFIES;
			}
			*record = rcv_record(rcv_sk, *record);
			if (*record <= last->judged_record)
				return NULL;
		}
	}
	if (bpftune_rate_limited(bpftune_net_cookie((struct net *)net), kind, TCP_BUFFER_INTERVAL_NS))
		return NULL;
	return last;
}

/* record: the receive record the verdict was judged on (0 for the send side). */
static __always_inline void mark_slot(struct last_post *slot, const struct net *net, int limit, bool posted,
				      __u32 record)
{
	__u32 now = (__u32)bpf_jiffies64();
	__u32 recheck = 0;

	if (!posted) {
		recheck = now + TCP_BUFFER_RECHECK_JIFFIES;
		if (!recheck)
			recheck = 1;
	}
	slot->net = (__u64)net;
	slot->limit = limit;
	slot->recheck = recheck;
	slot->judged_record = record;
	slot->record_read_at = now + TCP_BUFFER_RECORD_READ_JIFFIES;
}

/*
 * The sender's busy time and the part of it limited by the send buffer, from
 * the chrono stats (jiffies; the running period counted up to now, as
 * tcp_get_info_chrono_stats() does). CO-RE reads throughout: the kprobe
 * variant's sk is not BTF-typed, and this is the rare path.
 */
static __always_inline void sndbuf_chrono(const struct sock *sk, struct tcp_buffer_data *data)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 stat[3] = {};
	__u32 start, now;
	__u8 type;

	bpf_core_read(stat, sizeof(stat), &tp->chrono_stat);
	start = BPF_CORE_READ(tp, chrono_start);
	/* A 2-bit bitfield before 6.5, a u8 since: the bitfield read handles both. */
	type = (__u8)BPF_CORE_READ_BITFIELD_PROBED(tp, chrono_type);
	now = (__u32)bpf_jiffies64();
	if (type >= 1 && type <= 3) {
		if (type == 1)
			stat[0] += now - start;
		else if (type == 2)
			stat[1] += now - start;
		else
			stat[2] += now - start;
	}
	data->busy = stat[0] + stat[1] + stat[2];
	data->rwnd_limited = stat[1];
	data->sndbuf_limited = stat[2];
}

/*
 * Bytes the path holds per round trip, from the sender: in flight (snd_nxt -
 * snd_una) times min RTT / smoothed RTT, so bytes waiting in a queue on the
 * way, which lengthen the smoothed RTT but not the minimum, are not counted.
 * 0 before the first RTT sample (rtt_min starts at ~0U).
 */
static __always_inline void send_pipe(const struct sock *sk, struct tcp_buffer_data *data)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 in_flight = BPF_CORE_READ(tp, snd_nxt) - BPF_CORE_READ(tp, snd_una);
	__u64 srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	__u64 min_rtt = BPF_CORE_READ(tp, rtt_min.s[0].v);
	__u64 pipe = in_flight;

	if (!srtt || min_rtt == 0xffffffffULL) {
		data->pipe = 0;
		return;
	}
	if (min_rtt < srtt)
		pipe = pipe * min_rtt / srtt;
	data->pipe = (__u32)pipe;
}

/* Whether the sender is held back by its send buffer (see the top of this file). */
static __always_inline bool sndbuf_holds_back(const struct tcp_buffer_data *why, int wmem_max)
{
	if (why->busy && (__u64)why->sndbuf_limited * TCP_BUFFER_SNDBUF_SHARE >= why->busy)
		return true;
	return (__u64)why->pipe * TCP_BUFFER_BDP_SHARE >= (__u64)wmem_max &&
	       (__u64)why->rwnd_limited * TCP_BUFFER_RWND_SHARE <= why->busy;
}

/*
 * Bytes the path carries per round trip: the most read in one receiver RTT
 * (record: the new one about to replace rcvq_space.space, or 0 to read
 * rcvq_space.space itself), times srtt / receiver RTT. Both RTTs are in 1/8 us.
 */
static __always_inline void path_bdp(const struct sock *sk, __u32 record, struct tcp_buffer_data *why)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 space = rcv_record(sk, record);
	__u64 rcv_rtt = BPF_CORE_READ(tp, rcv_rtt_est.rtt_us);
	__u64 srtt = BPF_CORE_READ(tp, srtt_us);
	__u64 bdp = space;

	if (rcv_rtt && srtt)
		bdp = space * srtt / rcv_rtt;
	why->bdp = bdp > 0xffffffffULL ? 0xffffffffU : (__u32)bdp;
	why->rcv_space = space > 0xffffffffULL ? 0xffffffffU : (__u32)space;
}

static __always_inline void post_near_max(const struct sock *sk, struct net *net, __u32 kind,
					  const int limits[3], int sk_buf, const struct tcp_buffer_data *why)
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
	/* The readings of why the limit matters, then what describes the socket. */
	*data = *why;
	data->rtt_us = socket_rtt_us(sk, kind == TCP_BUFFER_EVENT_RMEM_NEAR_MAX);
	data->sk_buf = sk_buf;
	/* Read with CO-RE helpers: the kprobe variant's pointers are not BTF-typed. */
	data->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	data->tcp_moderate_rcvbuf = BPF_CORE_READ(net, ipv4.sysctl_tcp_moderate_rcvbuf);
	bpftune_post(&event);
}

/*
 * The receiver check after the cheap test passed: sk_buf is the buffer the
 * socket has (or is about to get), record as for path_bdp().
 */
static __always_inline void rcv_near_max(const struct sock *sk, struct net *net, int sk_buf, int rmem_max, __u32 record)
{
	struct tcp_buffer_data why = {};
	struct last_post *slot;
	int rmem[3];

	/* SO_RCVBUF fixes the size: the limit is not what holds this socket back. */
	if (SK_USERLOCKS(sk) & SOCK_RCVBUF_LOCK)
		return;
	slot = post_slot(TCP_BUFFER_EVENT_RMEM_NEAR_MAX, net, rmem_max, sk, &record);
	if (!slot)
		return;
	path_bdp(sk, record, &why);
	if ((__u64)why.bdp * TCP_BUFFER_BDP_SHARE < (__u64)rmem_max) {
		/* The path needs far less than the limit allows: auto-tuning overshoots, the limit holds nothing back. */
		mark_slot(slot, net, rmem_max, false, why.rcv_space);
		return;
	}
	mark_slot(slot, net, rmem_max, true, 0);
	rmem[0] = net->ipv4.sysctl_tcp_rmem[0];
	rmem[1] = net->ipv4.sysctl_tcp_rmem[1];
	rmem[2] = rmem_max;
	post_near_max(sk, net, TCP_BUFFER_EVENT_RMEM_NEAR_MAX, rmem, sk_buf, &why);
}

/*
 * Where the kernel has it (6.16 and later), tcp:tcp_rcvbuf_grow: it fires in
 * tcp_rcv_space_adjust only when the bytes read in the last receiver RTT
 * (copied) exceed the most read in one before (rcvq_space.space), just
 * before tcp_rcvbuf_grow() sizes the buffer for twice that. At most once per
 * RTT per socket, and only while demand grows: a bulk reader at a steady rate
 * costs nothing here, where tcp_rcv_space_adjust below runs on every read.
 *
 * Nothing is missed by hooking only there: the kernel grows an existing
 * socket's buffer at those calls and no others (out-of-order growth aside),
 * so a raised limit reaches a live connection only at its next one. A
 * connection held back by its limit still gets them: its reads per RTT vary,
 * and each new record is one. The tracepoint runs before the buffer is
 * resized, so the check is on what it is about to be: the larger of the
 * buffer now and the space for twice the copied bytes (tcp_space_from_win:
 * win * 256 / scaling_ratio), capped at the limit. tp is read with CO-RE
 * helpers: sk is typed struct sock, and tcp_sock lies beyond it.
 */
SEC("tp_btf/tcp_rcvbuf_grow")
int BPF_PROG(tcp_buffer_rcv_grow, struct sock *sk, int time)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct net *net = sk->__sk_common.skc_net.net;
	int rcvbuf = sk->sk_rcvbuf;
	int rmem_max = net->ipv4.sysctl_tcp_rmem[2];
	__u32 copied = BPF_CORE_READ(tp, copied_seq) - BPF_CORE_READ(tp, rcvq_space.seq);
	__u64 ratio = BPF_CORE_READ(tp, scaling_ratio);
	__u64 wanted = ratio ? ((__u64)copied << 9) / ratio : 0;
	int about_to_be = rcvbuf;

	if (wanted > (__u64)rcvbuf)
		about_to_be = wanted > (__u64)rmem_max ? rmem_max : (int)wanted;
	/*
	 * The gate judges the new record: a connection whose window is clamped at
	 * the limit may set no further one, so this call may be its last chance.
	 */
	if (bpftune_nearly_full(about_to_be, rmem_max))
		rcv_near_max(sk, net, about_to_be, rmem_max, copied);
	return 0;
}

/*
 * Kernels without tcp:tcp_rcvbuf_grow (6.1, 6.12): tcp_rcv_space_adjust runs
 * on every read, so it tests the cheapest condition first.
 */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tcp_buffer_rcv, struct sock *sk)
{
	struct net *net = sk->__sk_common.skc_net.net;
	int rcvbuf = sk->sk_rcvbuf;
	int rmem_max = net->ipv4.sysctl_tcp_rmem[2];

	if (bpftune_nearly_full(rcvbuf, rmem_max))
		rcv_near_max(sk, net, rcvbuf, rmem_max, 0);
	return 0;
}

/*
 * The sender check after the cheap test passed: the caller read the hot
 * fields its own way (direct loads where the pointer is BTF-typed).
 */
static __always_inline void snd_near_max(const struct sock *sk, struct net *net, int sndbuf, int wmem_max,
					 __u8 userlocks)
{
	struct tcp_buffer_data why = {};
	struct last_post *slot;
	int wmem[3];

	if (userlocks & SOCK_SNDBUF_LOCK)
		return;
	slot = post_slot(TCP_BUFFER_EVENT_WMEM_NEAR_MAX, net, wmem_max, NULL, NULL);
	if (!slot)
		return;
	sndbuf_chrono(sk, &why);
	send_pipe(sk, &why);
	if (!sndbuf_holds_back(&why, wmem_max)) {
		/* At the limit but not held back by it (the receiver's window, the path or the application is). */
		mark_slot(slot, net, wmem_max, false, 0);
		return;
	}
	mark_slot(slot, net, wmem_max, true, 0);
	wmem[0] = BPF_CORE_READ(net, ipv4.sysctl_tcp_wmem[0]);
	wmem[1] = BPF_CORE_READ(net, ipv4.sysctl_tcp_wmem[1]);
	wmem[2] = wmem_max;
	post_near_max(sk, net, TCP_BUFFER_EVENT_WMEM_NEAR_MAX, wmem, sndbuf, &why);
}

/*
 * A sender to a loopback address is not judged: the path's bandwidth-delay
 * product is a few bytes, so a send buffer at the limit there never holds it
 * back (the chrono check would say so after the slot lookup). Local traffic
 * is often the busiest there is, and its sockets sit at the limit on every
 * send: `stress-ng --sock` paid the slot lookup about 590 times per
 * operation, a quarter of a percent of its CPU. The addresses are in the
 * socket's first cache line, which the test before has already loaded; the
 * host's own non-loopback addresses are not caught.
 */
/* The cheap test with direct loads, for the variants whose sk is BTF-typed (tp_btf, fentry). */
static __always_inline void snd_check(const struct sock *sk)
{
	struct net *net = sk->__sk_common.skc_net.net;
	int sndbuf = sk->sk_sndbuf;
	int wmem_max = net->ipv4.sysctl_tcp_wmem[2];

	if (!bpftune_nearly_full(sndbuf, wmem_max))
		return;
	if (bpftune_loopback_peer(sk->__sk_common.skc_family, sk->__sk_common.skc_daddr,
				  sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32))
		return;
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

	__be32 v6[4] = {};

	if (!bpftune_nearly_full(sndbuf, wmem_max))
		return 0;
	BPF_CORE_READ_INTO(&v6, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	if (bpftune_loopback_peer(BPF_CORE_READ(sk, __sk_common.skc_family), BPF_CORE_READ(sk, __sk_common.skc_daddr), v6))
		return 0;
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
