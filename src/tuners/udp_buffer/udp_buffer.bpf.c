// SPDX-License-Identifier: GPL-2.0
/*
 * udp_buffer, BPF side: datagrams a UDP socket could not queue
 * (tracepoint udp:udp_fail_queue_rcv_skb, present with (rc, sk) since long
 * before 6.1). rc says why: -ENOMEM when the receive queue was at
 * sk_rcvbuf, -ENOBUFS when UDP memory accounting (net.ipv4.udp_mem)
 * refused it. Drops are counted per namespace and kind; at most one event
 * per EVENT_INTERVAL reaches the daemon (bpftune_count.bpf.h), carrying the count and the last
 * dropping socket's buffer, so a flood costs a map update per drop and no
 * more.
 *
 * Before 6.4, __udpv6_queue_rcv_skb() never calls that tracepoint (only
 * the IPv4 path does), so on those kernels the daemon also loads
 * udp_buffer_enqueue_exit, on the function both paths queue through, and
 * sets udp_buffer_ipv6_by_fexit: AF_INET6 sockets are then counted there
 * only, so a kernel that has the call after all (a backport) counts no
 * drop twice.
 *
 * Since 6.18 the reverse: __udp_enqueue_schedule_skb() queues datagrams in
 * per-NUMA batches, and those UDP memory accounting refuses in a batch are
 * freed with reason PROTO_MEM and nothing else (no tracepoint, no MemErrors:
 * a TODO there); it returns an error only for a full receive buffer. So
 * from 6.18 the daemon also loads udp_buffer_proto_mem_drop on skb:kfree_skb,
 * whose rx_sk (6.11 and later) is the refusing socket, and sets
 * udp_buffer_memory_by_kfree_skb: memory refusals are then counted there
 * only.
 */
#include "bpftune_count.bpf.h"
#include "udp_buffer.h"

#define UDP_BUFFER_EVENT_INTERVAL_NS	(250ULL * 1000 * 1000)
#define UDP_BUFFER_ENOMEM		12
#define UDP_BUFFER_ENOBUFS		105
/* include/net/sock.h: sk_userlocks bit set by SO_RCVBUF */
#define UDP_BUFFER_SOCK_RCVBUF_LOCK	2
#define UDP_BUFFER_AF_INET6		10

#define UDP_BUFFER_IPPROTO_UDP		17
#define UDP_BUFFER_SOCK_DGRAM		2

/* Set by the daemon before load when udp_buffer_enqueue_exit is loaded. */
const volatile __u32 udp_buffer_ipv6_by_fexit = 0;
/* Set by the daemon before load when udp_buffer_proto_mem_drop is loaded. */
const volatile __u32 udp_buffer_memory_by_kfree_skb = 0;

/* Kept in BTF for the generated udp_buffer.contract.ts. */
BPFTUNE_CONTRACT_STRUCT(udp_buffer_event_data);
BPFTUNE_CONTRACT_ENUM(udp_buffer_scenario);
BPFTUNE_CONTRACT_ENUM(udp_buffer_drop_kind);

static __always_inline __s64 udp_pages_allocated(struct sock *sk)
{
	atomic_long_t *allocated = BPF_CORE_READ(sk, __sk_common.skc_prot, memory_allocated);
	__s64 pages = 0;

	if (allocated)
		bpf_probe_read_kernel(&pages, sizeof(pages), &allocated->counter);
	return pages;
}

static __always_inline int udp_buffer_drop(int rc, struct sock *sk, __u16 family)
{
	struct bpftune_event event = {};
	struct udp_buffer_event_data *data = (void *)event.data;
	__u64 drops, since_ns = 0;
	__u32 kind;
	struct net *net;

	if (rc == -UDP_BUFFER_ENOMEM)
		kind = UDP_BUFFER_DROP_KIND_RCVBUF;
	else if (rc == -UDP_BUFFER_ENOBUFS)
		kind = UDP_BUFFER_DROP_KIND_MEMORY;
	else
		return 0;
	net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	if (!net)
		return 0;
	drops = bpftune_count_limited(bpftune_net_cookie(net), kind, UDP_BUFFER_EVENT_INTERVAL_NS, &since_ns);
	if (!drops)
		return 0;
	bpftune_event_init(&event, kind == UDP_BUFFER_DROP_KIND_RCVBUF ?
			   UDP_BUFFER_SCENARIO_INCREASE : UDP_BUFFER_SCENARIO_MEM_EXHAUSTION, net);
	event.old_values[0] = drops;
	data->drop_kind = kind;
	data->family = family;
	data->rcvbuf = BPF_CORE_READ(sk, sk_rcvbuf);
	/* A bitfield before 6.9, a byte since: the probed read handles both. */
	data->rcvbuf_locked = (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks) & UDP_BUFFER_SOCK_RCVBUF_LOCK) ? 1 : 0;
	data->memory_allocated = udp_pages_allocated(sk);
	data->window_ns = since_ns;
	bpftune_post(&event);
	return 0;
}

SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(udp_fail_queue_rcv_skb, int rc, struct sock *sk)
{
	__u16 family;

	if (!sk || rc >= 0)
		return 0;
	if (udp_buffer_memory_by_kfree_skb && rc == -UDP_BUFFER_ENOBUFS)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (udp_buffer_ipv6_by_fexit && family == UDP_BUFFER_AF_INET6)
		return 0;
	return udp_buffer_drop(rc, sk, family);
}

/*
 * Before 6.4 only: every datagram a UDP socket receives passes here (IPv4
 * and IPv6), so this returns at once unless it was refused, and leaves
 * AF_INET sockets to the tracepoint. 6.1's __udpv6_queue_rcv_skb() calls
 * this and on failure only counts RcvbufErrors/MemErrors and frees the skb
 * (reason SOCKET_RCVBUFF or PROTO_MEM): the socket it was refused by is
 * known here and nowhere after.
 */
SEC("fexit/__udp_enqueue_schedule_skb")
int BPF_PROG(udp_buffer_enqueue_exit, struct sock *sk, struct sk_buff *skb, int rc)
{
	__u16 family;

	if (rc >= 0 || !sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != UDP_BUFFER_AF_INET6)
		return 0;
	return udp_buffer_drop(rc, sk, family);
}

/*
 * 6.18 and later only (the rx_sk argument is there since 6.11): every
 * dropped skb passes here, so anything but PROTO_MEM returns at the first
 * test; what remains is counted when the socket it was refused by is UDP.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(udp_buffer_proto_mem_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_PROTO_MEM))
		return 0;
	if (!rx_sk || BPF_CORE_READ(rx_sk, sk_protocol) != UDP_BUFFER_IPPROTO_UDP ||
	    BPF_CORE_READ(rx_sk, sk_type) != UDP_BUFFER_SOCK_DGRAM)
		return 0;
	return udp_buffer_drop(-UDP_BUFFER_ENOBUFS, rx_sk, BPF_CORE_READ(rx_sk, __sk_common.skc_family));
}
