// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_conn, BPF side: a sockops program on the root cgroup v2 sees every TCP
 * connection on the machine, so it does only cheap work per callback and
 * asks for callbacks only on established connections.
 *
 * - Established: leave a connection over the loopback device alone (see
 *   over_loopback()). Else note the strategy user space runs (tcp_conn_mode; see
 *   enum tcp_conn_strategy); under the learner's, apply its algorithm for
 *   this remote host if it has chosen one (tcp_conn_choices); then ask for
 *   retransmit and state-change callbacks.
 * - Retransmit: when retransmissions exceed 1/64 of segments sent on a
 *   connection the learner is not steering, unless it was established
 *   under the kernel-default strategy, switch it to bbr (loss-based
 *   algorithms collapse on random loss, bbr models bandwidth and RTT instead)
 *   and tell user space, at most once per remote host per interval. Also
 *   set TCP_THIN_LINEAR_TIMEOUTS on it, as the reference does (see
 *   set_thin_linear_timeouts()).
 * - Close: post the connection's min RTT, bytes acked and lifetime, keyed by
 *   remote host, with its strategy, for the learner and the strategy scores;
 *   not for a path under 1 ms (see TCP_CONN_MIN_PATH_RTT_US).
 * In advisory mode (bpftune_advisory, --advise) no connection is switched:
 * the loss rule only reports the switch it would make.
 */
/* sock_ops: 6.1 does not offer it bpf_get_current_pid_tgid (see bpftune.bpf.h). */
#define BPFTUNE_EVENT_NO_PID
#include "bpftune.bpf.h"
#include "tcp_conn.h"

#define SOL_TCP		6
#define TCP_CONGESTION	13
#define TCP_THIN_LINEAR_TIMEOUTS	16
#define RTF_GATEWAY	0x0002
#define TCP_CA_NAME_MAX	16

/*
 * Fewer retransmissions than this are a tail-loss probe or two, which any
 * healthy connection sends now and then; they say nothing about the path.
 */
#define TCP_CONN_MIN_RETRANS		4
/* One loss event per remote host per interval reaches user space. */
#define TCP_CONN_LOSS_INTERVAL_NS	(10 * 1000 * 1000 * 1000ULL)
/*
 * Connections that sent fewer data segments than this (request/response,
 * control channels, the receiving side of a transfer) never left slow start:
 * their rate says nothing about the algorithm.
 */
#define TCP_CONN_MIN_SAMPLE_SEGS	32
/*
 * A path whose min RTT is under 1 ms (the same host, rack or data centre)
 * fills its bottleneck within a few RTTs whatever the algorithm: the delivery
 * rates the learner compares there differ by the application's pace and by
 * noise, not by the algorithm, and its lead flips from sample to sample (seen
 * on veth paths between namespaces, natively and in a VM). As with loopback,
 * such a connection is not measured: no sample, no choice for its remote
 * host. The loss rule still applies to it.
 */
#define TCP_CONN_MIN_PATH_RTT_US	1000
/*
 * A busy server closes thousands of connections a second to the same
 * gateway; a handful of measurements a second per remote host is all the
 * learner can use.
 */
#define TCP_CONN_SAMPLE_INTERVAL_NS	(100 * 1000 * 1000ULL)

struct tcp_conn_sk {
	__u64 established_ns;
	__u32 initial_alg;	/* the learner's choice, when it made one */
	__u32 learned;
	__u32 strategy;		/* enum tcp_conn_strategy at establishment */
};

/*
 * Written by user space: the running strategy (enum tcp_conn_strategy). One
 * program serves every strategy, since each needs its measurements at
 * close: a mode read once per connection is cheaper than swapping programs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tcp_conn_mode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tcp_conn_sk);
} tcp_conn_sk_storage SEC(".maps");

/* Written by user space: the algorithm each learned remote host should get. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_conn_remote);
	__type(value, struct tcp_conn_choice);
} tcp_conn_choices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_conn_remote);
	__type(value, __u64);
} tcp_conn_loss_posted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_conn_remote);
	__type(value, __u64);
} tcp_conn_sample_posted SEC(".maps");

/* At most one post per remote host per interval; a lost race posts one extra. */
static __always_inline bool remote_rate_limited(void *map, struct tcp_conn_remote *remote, __u64 interval_ns)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(map, remote);

	if (last && now - *last < interval_ns)
		return true;
	bpf_map_update_elem(map, remote, &now, BPF_ANY);
	return false;
}

/* Totals for the summary (enum tcp_conn_count). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCP_CONN_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} tcp_conn_counts SEC(".maps");

/*
 * Connections given thin linear timeouts (in advisory mode: that would have
 * been), per namespace cookie: user space logs what grew every few seconds.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} tcp_conn_thin_lto SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&tcp_conn_counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/*
 * Written by user space: namespaces (cookies) where an administrator set the
 * congestion control, and so took over; their connections are left alone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} tcp_conn_manual SEC(".maps");

static __always_inline bool manual(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_netns_cookie(skops);

	return bpf_map_lookup_elem(&tcp_conn_manual, &cookie) != NULL;
}

/* The payload is copied into event.data, so clang would emit no BTF for its type without this. */
BPFTUNE_CONTRACT_STRUCT(tcp_conn_event_data);
BPFTUNE_CONTRACT_ENUM(tcp_conn_scenario);
BPFTUNE_CONTRACT_ENUM(tcp_conn_alg);
BPFTUNE_CONTRACT_ENUM(tcp_conn_count);
BPFTUNE_CONTRACT_ENUM(tcp_conn_strategy);

static const char alg_reno[] = "reno";
static const char alg_cubic[] = "cubic";
static const char alg_bbr[] = "bbr";

static __always_inline bool name_is(const char *name, const char *want, int len)
{
	for (int i = 0; i < len; i++)
		if (name[i] != want[i])
			return false;
	return true;
}

static __always_inline __u32 current_alg(struct bpf_sock_ops *skops)
{
	char name[TCP_CA_NAME_MAX] = {};

	if (bpf_getsockopt(skops, SOL_TCP, TCP_CONGESTION, name, sizeof(name)))
		return TCP_CONN_ALG_OTHER;
	/* sizeof includes the NUL, so "bbr" does not match "bbr2". */
	if (name_is(name, alg_bbr, sizeof(alg_bbr)))
		return TCP_CONN_ALG_BBR;
	if (name_is(name, alg_cubic, sizeof(alg_cubic)))
		return TCP_CONN_ALG_CUBIC;
	if (name_is(name, alg_reno, sizeof(alg_reno)))
		return TCP_CONN_ALG_RENO;
	return TCP_CONN_ALG_OTHER;
}

static __always_inline long set_alg(struct bpf_sock_ops *skops, __u32 alg)
{
	long err;

	switch (alg) {
	case TCP_CONN_ALG_RENO:
		err = bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, (void *)alg_reno, sizeof(alg_reno));
		break;
	case TCP_CONN_ALG_CUBIC:
		err = bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, (void *)alg_cubic, sizeof(alg_cubic));
		break;
	case TCP_CONN_ALG_BBR:
		err = bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, (void *)alg_bbr, sizeof(alg_bbr));
		break;
	default:
		return -22; /* -EINVAL: not an algorithm the learner knows */
	}
	if (!err)
		count(alg);
	return err;
}

/*
 * A thin stream (fewer than 4 packets in flight, past initial slow start:
 * too few for fast retransmit) recovers a loss only by retransmission
 * timeouts, each twice as long as the last. With TCP_THIN_LINEAR_TIMEOUTS
 * the kernel keeps the first 6 linear while the stream is thin
 * (tcp_retransmit_timer), so an interactive flow stalls for less. As in
 * the reference, it is set on every connection the loss rule picks, since
 * the kernel applies it only while the stream is thin; not where the
 * namespace's net.ipv4.tcp_thin_linear_timeouts already applies it to all.
 */
static __always_inline void set_thin_linear_timeouts(struct bpf_sock_ops *skops, struct tcp_sock *tp)
{
	struct net *net = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_net.net);
	__u64 cookie, one = 1, *n;
	int on = 1;

	if (BPF_CORE_READ(net, ipv4.sysctl_tcp_thin_linear_timeouts))
		return;
	/* Advisory mode: count what it would do, for the advice, and do nothing. */
	if (!bpftune_advisory) {
		if (bpf_setsockopt(skops, SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS, &on, sizeof(on)))
			return;
		count(TCP_CONN_COUNT_THIN_LTO);
	}
	cookie = bpf_get_netns_cookie(skops);
	n = bpf_map_lookup_elem(&tcp_conn_thin_lto, &cookie);
	if (n)
		__sync_fetch_and_add(n, 1);
	else /* a lost race to create the entry counts one connection fewer in the log; the total above is exact */
		bpf_map_update_elem(&tcp_conn_thin_lto, &cookie, &one, BPF_NOEXIST);
}

/*
 * A dual-stack socket talking to an IPv4 peer (::ffff:a.b.c.d) is IPv4 on
 * the wire: its route is an IPv4 one, and so is its remote host. ip6 is the
 * context's remote_ip6, loaded by the caller.
 */
static __always_inline bool peer_is_v4(const struct bpf_sock_ops *skops, const __u32 ip6[4])
{
	return skops->family == AF_INET || (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff));
}

/*
 * The remote host is the next hop: the gateway when the route has one (every
 * host behind it shares the path's bottleneck as far as we can tell), else
 * the peer. The socket's cached route is set once it is established.
 */
static __always_inline void remote_of(struct bpf_sock_ops *skops, struct tcp_sock *tp,
				      struct tcp_conn_remote *remote, __u32 peer[4])
{
	struct dst_entry *dst = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_dst_cache);
	/* Loaded up front: the verifier refuses a context pointer the compiler offsets conditionally. */
	__u32 ip4 = skops->remote_ip4;
	__u32 ip6[4] = { skops->remote_ip6[0], skops->remote_ip6[1],
			 skops->remote_ip6[2], skops->remote_ip6[3] };
	bool v4 = peer_is_v4(skops, ip6);

	remote->netns_cookie = bpf_get_netns_cookie(skops);
	if (v4) {
		remote->family = AF_INET;
		peer[0] = skops->family == AF_INET ? ip4 : ip6[3];
		remote->addr[0] = peer[0];
		if (dst) {
			struct rtable *rt = container_of(dst, struct rtable, dst);

			if (BPF_CORE_READ(rt, rt_gw_family) == AF_INET)
				remote->addr[0] = BPF_CORE_READ(rt, rt_gw4);
		}
		return;
	}
	remote->family = AF_INET6;
	__builtin_memcpy(peer, ip6, sizeof(ip6));
	__builtin_memcpy(remote->addr, ip6, sizeof(ip6));
	if (dst) {
		struct rt6_info *rt = container_of(dst, struct rt6_info, dst);

		if (BPF_CORE_READ(rt, rt6i_flags) & RTF_GATEWAY)
			BPF_CORE_READ_INTO(&remote->addr, rt, rt6i_gateway.in6_u.u6_addr32);
	}
}

/*
 * A connection whose route runs through the loopback device (127.0.0.0/8,
 * ::1, or one of the host's own addresses) has no path to tune: nothing is
 * lost or queued on it, and every algorithm delivers the same. Measuring it
 * would only feed the learner noise (its best algorithm flips from sample to
 * sample) and cost callbacks on the busiest local traffic there is, so such a
 * connection is left alone from its first callback. The route is set by the
 * time either side is established; the addresses decide without one.
 */
static __always_inline bool over_loopback(struct bpf_sock_ops *skops, struct tcp_sock *tp)
{
	struct dst_entry *dst = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_dst_cache);
	__u32 ip4 = skops->remote_ip4;
	__u32 ip6[4] = { skops->remote_ip6[0], skops->remote_ip6[1],
			 skops->remote_ip6[2], skops->remote_ip6[3] };

	if (dst)
		return BPF_CORE_READ(dst, dev, flags) & IFF_LOOPBACK;
	return bpftune_loopback_peer(skops->family, ip4, ip6);
}

static __always_inline void post(struct bpf_sock_ops *skops, struct tcp_sock *tp, __u32 scenario,
				 struct tcp_conn_event_data *data)
{
	struct bpftune_event event = {};

	bpftune_event_init(&event, scenario, BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_net.net));
	/* Callbacks run in softirq context: the current task is not the socket's owner. */
	event.pid = 0;
	__builtin_memcpy(event.data, data, sizeof(*data));
	bpftune_post(&event);
}

static __always_inline void on_established(struct bpf_sock_ops *skops, struct bpf_sock *sk, struct tcp_sock *tp)
{
	struct tcp_conn_event_data data = {};
	struct tcp_conn_choice *choice = NULL;
	struct tcp_conn_sk *state;
	__u32 zero = 0, *mode;

	if (over_loopback(skops, tp) || manual(skops))
		return;
	state = bpf_sk_storage_get(&tcp_conn_sk_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!state)
		return;
	mode = bpf_map_lookup_elem(&tcp_conn_mode, &zero);
	state->strategy = mode ? *mode : TCP_CONN_STRATEGY_LEARNED;
	remote_of(skops, tp, &data.remote, data.peer);
	/* Advisory mode: the learner still learns, but no connection is steered. */
	if (!bpftune_advisory && state->strategy == TCP_CONN_STRATEGY_LEARNED)
		choice = bpf_map_lookup_elem(&tcp_conn_choices, &data.remote);
	if (choice) {
		data.setsockopt_err = set_alg(skops, choice->alg);
		if (data.setsockopt_err == 0) {
			state->learned = 1;
			state->initial_alg = choice->alg;
		} else if (!bpftune_rate_limited(data.remote.netns_cookie, TCP_CONN_SCENARIO_SET_FAILED,
						 TCP_CONN_LOSS_INTERVAL_NS)) {
			data.alg = choice->alg;
			post(skops, tp, TCP_CONN_SCENARIO_SET_FAILED, &data);
		}
	}
	state->established_ns = bpf_ktime_get_ns();
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_RETRANS_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void on_retransmit(struct bpf_sock_ops *skops, struct bpf_sock *sk, struct tcp_sock *tp)
{
	struct tcp_conn_event_data data = {};
	struct tcp_conn_sk *state;

	if (skops->total_retrans < TCP_CONN_MIN_RETRANS ||
	    (__u64)skops->total_retrans << 6 <= skops->segs_out)
		return;
	state = bpf_sk_storage_get(&tcp_conn_sk_storage, sk, 0, 0);
	/*
	 * The learner is steering this remote (its choice stands: loss is in its
	 * cost), the connection is part of the kernel-default baseline, or an
	 * administrator took this namespace over since establishment.
	 */
	if (!state || state->learned || state->strategy == TCP_CONN_STRATEGY_DEFAULT || manual(skops))
		goto done;
	/* Whatever algorithm it runs: timeouts are not the algorithm's business. */
	set_thin_linear_timeouts(skops, tp);
	data.initial_alg = current_alg(skops);
	if (data.initial_alg == TCP_CONN_ALG_BBR)
		goto done;
	/* Advisory mode: report the switch it would make, and leave the connection as it is. */
	data.setsockopt_err = bpftune_advisory ? 0 : set_alg(skops, TCP_CONN_ALG_BBR);
	data.alg = TCP_CONN_ALG_BBR;
	data.total_retrans = skops->total_retrans;
	data.segs_out = skops->segs_out;
	data.data_segs_out = skops->data_segs_out;
	remote_of(skops, tp, &data.remote, data.peer);

	if (remote_rate_limited(&tcp_conn_loss_posted, &data.remote, TCP_CONN_LOSS_INTERVAL_NS) &&
	    !data.setsockopt_err)
		goto done;
	post(skops, tp, TCP_CONN_SCENARIO_LOSS, &data);
done:
	/* Decided either way: no more retransmit callbacks for this connection. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_RETRANS_CB_FLAG);
}

static __always_inline void on_close(struct bpf_sock_ops *skops, struct bpf_sock *sk, struct tcp_sock *tp)
{
	struct tcp_conn_event_data data = {};
	struct tcp_conn_sk *state;

	if (skops->data_segs_out < TCP_CONN_MIN_SAMPLE_SEGS || skops->rtt_min < TCP_CONN_MIN_PATH_RTT_US)
		return;
	state = bpf_sk_storage_get(&tcp_conn_sk_storage, sk, 0, 0);
	if (!state || !state->established_ns)
		return;
	data.alg = current_alg(skops);
	data.initial_alg = state->initial_alg;
	data.learned = state->learned;
	data.strategy = state->strategy;
	data.min_rtt_us = skops->rtt_min;
	data.total_retrans = skops->total_retrans;
	data.segs_out = skops->segs_out;
	data.data_segs_out = skops->data_segs_out;
	data.bytes_acked = skops->bytes_acked;
	data.duration_us = (bpf_ktime_get_ns() - state->established_ns) / 1000;
	remote_of(skops, tp, &data.remote, data.peer);
	if (remote_rate_limited(&tcp_conn_sample_posted, &data.remote, TCP_CONN_SAMPLE_INTERVAL_NS))
		return;
	post(skops, tp, TCP_CONN_SCENARIO_SAMPLE, &data);
}

SEC("sockops")
int tcp_conn_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	__u32 op = skops->op;

	/*
	 * The program runs for a dozen or so callbacks per connection (timeouts,
	 * window, every state change, ...): leave the ones we ignore at once.
	 */
	if (op == BPF_SOCK_OPS_STATE_CB) {
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
	} else if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
		   op != BPF_SOCK_OPS_RETRANS_CB) {
		return 1;
	}
	sk = skops->sk;
	if (!sk || (skops->family != AF_INET && skops->family != AF_INET6))
		return 1;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 1;
	switch (op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_established(skops, sk, tp);
		break;
	case BPF_SOCK_OPS_RETRANS_CB:
		on_retransmit(skops, sk, tp);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		on_close(skops, sk, tp);
		break;
	}
	return 1;
}
