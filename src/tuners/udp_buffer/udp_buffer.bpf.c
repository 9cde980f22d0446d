// SPDX-License-Identifier: GPL-2.0
/*
 * udp_buffer, BPF side: datagrams a UDP socket could not queue
 * (tracepoint udp:udp_fail_queue_rcv_skb, present with (rc, sk) since long
 * before 6.1). rc says why: -ENOMEM when the receive queue was at
 * sk_rcvbuf, -ENOBUFS when UDP memory accounting (net.ipv4.udp_mem)
 * refused it. Drops are counted per namespace and kind; at most one event
 * per EVENT_INTERVAL reaches the daemon, carrying the count and the last
 * dropping socket's buffer, so a flood costs a map update per drop and no
 * more.
 */
#include "bpftune.bpf.h"
#include "udp_buffer.h"

#define UDP_BUFFER_EVENT_INTERVAL_NS	(250ULL * 1000 * 1000)
#define UDP_BUFFER_ENOMEM		12
#define UDP_BUFFER_ENOBUFS		105
/* include/net/sock.h: sk_userlocks bit set by SO_RCVBUF */
#define UDP_BUFFER_SOCK_RCVBUF_LOCK	2

struct udp_drop_key {
	__u64 netns_cookie;
	__u32 drop_kind;
	__u32 pad;
};

struct udp_drop_window {
	__u64 drops;
	__u64 last_event_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct udp_drop_key);
	__type(value, struct udp_drop_window);
} udp_drops SEC(".maps");

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

SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(udp_fail_queue_rcv_skb, int rc, struct sock *sk)
{
	struct udp_drop_key key = {};
	struct udp_drop_window fresh = {}, *w;
	struct bpftune_event event = {};
	struct udp_buffer_event_data *data = (void *)event.data;
	struct net *net;
	__u64 now;

	if (rc == -UDP_BUFFER_ENOMEM)
		key.drop_kind = UDP_BUFFER_DROP_KIND_RCVBUF;
	else if (rc == -UDP_BUFFER_ENOBUFS)
		key.drop_kind = UDP_BUFFER_DROP_KIND_MEMORY;
	else
		return 0;
	if (!sk)
		return 0;
	net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	if (!net)
		return 0;
	key.netns_cookie = bpftune_net_cookie(net);
	w = bpf_map_lookup_elem(&udp_drops, &key);
	if (!w) {
		bpf_map_update_elem(&udp_drops, &key, &fresh, BPF_NOEXIST);
		w = bpf_map_lookup_elem(&udp_drops, &key);
		if (!w)
			return 0;
	}
	__sync_fetch_and_add(&w->drops, 1);
	now = bpf_ktime_get_ns();
	if (now - w->last_event_ns < UDP_BUFFER_EVENT_INTERVAL_NS)
		return 0;
	bpftune_event_init(&event, key.drop_kind == UDP_BUFFER_DROP_KIND_RCVBUF ?
			   UDP_BUFFER_SCENARIO_INCREASE : UDP_BUFFER_SCENARIO_MEM_EXHAUSTION, net);
	event.old_values[0] = w->drops;
	data->drop_kind = key.drop_kind;
	data->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	data->rcvbuf = BPF_CORE_READ(sk, sk_rcvbuf);
	/* A bitfield before 6.9, a byte since: the probed read handles both. */
	data->rcvbuf_locked = (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks) & UDP_BUFFER_SOCK_RCVBUF_LOCK) ? 1 : 0;
	data->memory_allocated = udp_pages_allocated(sk);
	data->window_ns = w->last_event_ns ? now - w->last_event_ns : 0;
	w->last_event_ns = now;
	w->drops = 0;
	bpftune_post(&event);
	return 0;
}
