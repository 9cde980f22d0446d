// SPDX-License-Identifier: GPL-2.0
/*
 * ip_frag, BPF side: fragments dropped because the namespace's reassembly
 * memory is over its high threshold. inet_frag_find() refuses every
 * fragment, of new and of half-assembled datagrams alike, while
 * fqdir->mem > high_thresh; ip_defrag() and ipv6_frag_rcv() then count
 * ReasmFails and free the fragment with plain kfree_skb(), i.e. drop
 * reason NOT_SPECIFIED. Neither has a tracepoint of its own, and fentry
 * (the reference's hook) is refused here, so the program watches
 * skb:kfree_skb (tp_btf, 6.1 and later) and returns at the first test for
 * anything but an unspecified drop; what remains is checked for being a
 * fragment and for the namespace's reassembly memory being full, which is
 * exactly the kernel's reason to refuse it.
 */
#include "bpftune_count.bpf.h"
#include <bpf/bpf_endian.h>
#include "ip_frag.h"

#define IP_FRAG_EVENT_INTERVAL_NS	(250ULL * 1000 * 1000)
#define IP_FRAG_ETH_P_IP		0x0800
#define IP_FRAG_ETH_P_IPV6		0x86DD
/* MF flag and fragment offset bits of iphdr.frag_off, host order */
#define IP_FRAG_MF_OFFSET		0x3FFF
#define IP_FRAG_NEXTHDR_FRAGMENT	44

/* Kept in BTF for the generated ip_frag.contract.ts. */
BPFTUNE_CONTRACT_STRUCT(ip_frag_event_data);
BPFTUNE_CONTRACT_ENUM(ip_frag_scenario);
BPFTUNE_CONTRACT_ENUM(ip_frag_family);

static __always_inline bool is_fragment(struct sk_buff *skb, __u32 family)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 network = BPF_CORE_READ(skb, network_header);

	if (family == IP_FRAG_FAMILY_IPV4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + network))
			return false;
		return bpf_ntohs(ip.frag_off) & IP_FRAG_MF_OFFSET;
	} else {
		struct ipv6hdr ip6;

		/* The common case: the fragment header first; others are not counted. */
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + network))
			return false;
		return ip6.nexthdr == IP_FRAG_NEXTHDR_FRAGMENT;
	}
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct bpftune_event event = {};
	struct ip_frag_event_data *data = (void *)event.data;
	struct net_device *dev;
	struct fqdir *fqdir;
	struct net *net;
	__s64 mem, high_thresh;
	__u64 drops, since_ns = 0;
	__u32 family;
	__u16 protocol;

	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED))
		return 0;
	protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (protocol == IP_FRAG_ETH_P_IP)
		family = IP_FRAG_FAMILY_IPV4;
	else if (protocol == IP_FRAG_ETH_P_IPV6)
		family = IP_FRAG_FAMILY_IPV6;
	else
		return 0;
	dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return 0;
	net = BPF_CORE_READ(dev, nd_net.net);
	if (!net)
		return 0;
	fqdir = family == IP_FRAG_FAMILY_IPV4 ? BPF_CORE_READ(net, ipv4.fqdir) :
						    BPF_CORE_READ(net, ipv6.fqdir);
	if (!fqdir)
		return 0;
	mem = BPF_CORE_READ(fqdir, mem.counter);
	high_thresh = BPF_CORE_READ(fqdir, high_thresh);
	/* inet_frag_find() refuses at mem > high_thresh; a drop near it may race with an eviction. */
	if (high_thresh <= 0 || !bpftune_nearly_full(mem, high_thresh))
		return 0;
	if (!is_fragment(skb, family))
		return 0;
	drops = bpftune_count_limited(bpftune_net_cookie(net), family, IP_FRAG_EVENT_INTERVAL_NS, &since_ns);
	if (!drops)
		return 0;
	bpftune_event_init(&event, IP_FRAG_SCENARIO_INCREASE, net);
	event.old_values[0] = drops;
	data->family = family;
	data->mem = mem;
	data->high_thresh = high_thresh;
	data->window_ns = since_ns;
	bpftune_post(&event);
	return 0;
}
