// SPDX-License-Identifier: GPL-2.0
/*
 * net_buffer, BPF side: packets dropped because a CPU's input backlog was
 * full (enqueue_to_backlog(): skb:kfree_skb with reason CPU_BACKLOG).
 * Drops are counted per CPU over a one-minute window; more than
 * netdev_max_backlog / 32 of them in a window posts one event. kfree_skb
 * fires for every freed-with-reason packet, so anything but a backlog drop
 * returns at the first comparison.
 */
#include "bpftune.bpf.h"
#include "net_buffer.h"

#define NET_BUFFER_WINDOW_NS	(60ULL * 1000 * 1000 * 1000)
/*
 * A storm of drops asks for one step at a time, the next event judged
 * against the grown limit: at most 4 steps a second per CPU (16 -> 64 in
 * about 1.5 s at learning rate 4) without a write per dropped packet.
 */
#define NET_BUFFER_EVENT_INTERVAL_NS	(250ULL * 1000 * 1000)
/* Until user space says otherwise: the kernel default 1000 / 32. */
#define NET_BUFFER_DEFAULT_THRESHOLD	31

struct backlog_window {
	__u64 start_ns;
	__u64 drops;
	__u64 last_event_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct backlog_window);
} backlog_drops SEC(".maps");

/* [0]: drops per window that are tolerated, netdev_max_backlog >> 5, kept current by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} backlog_threshold SEC(".maps");

BPFTUNE_CONTRACT_STRUCT(net_buffer_event_data);
BPFTUNE_CONTRACT_ENUM(net_buffer_scenario);

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct bpftune_event event = {};
	struct net_buffer_event_data *data = (void *)event.data;
	struct backlog_window *w;
	__u32 key = 0, threshold = NET_BUFFER_DEFAULT_THRESHOLD, *configured;
	struct net_device *dev;
	struct net *net;
	__u64 now;

	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_CPU_BACKLOG))
		return 0;
	w = bpf_map_lookup_elem(&backlog_drops, &key);
	if (!w)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - w->start_ns >= NET_BUFFER_WINDOW_NS) {
		w->start_ns = now;
		w->drops = 0;
	}
	w->drops++;
	configured = bpf_map_lookup_elem(&backlog_threshold, &key);
	if (configured && *configured)
		threshold = *configured;
	else if (configured)
		threshold = 0;
	if (w->drops <= threshold || now - w->last_event_ns < NET_BUFFER_EVENT_INTERVAL_NS)
		return 0;
	dev = BPF_CORE_READ(skb, dev);
	net = dev ? BPF_CORE_READ(dev, nd_net.net) : bpftune_task_net(bpf_get_current_task_btf());
	bpftune_event_init(&event, NET_BUFFER_SCENARIO_BACKLOG_DROPS, net);
	event.old_values[0] = w->drops;
	data->cpu = bpf_get_smp_processor_id();
	data->threshold = threshold;
	data->window_ns = now - w->start_ns;
	bpftune_post(&event);
	w->last_event_ns = now;
	/* A new window: the grown limit is judged on its own drops. */
	w->start_ns = now;
	w->drops = 0;
	return 0;
}
