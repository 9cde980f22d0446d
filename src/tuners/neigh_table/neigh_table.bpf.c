// SPDX-License-Identifier: GPL-2.0
/*
 * neigh_table, BPF side. A neighbour table (arp_cache, ndisc_cache) is one
 * per family for the whole system: every namespace's entries count towards
 * its gc_thresh1..3. Entry creation (tracepoint neigh:neigh_create, after
 * the allocation, so a refused one is seen too) tells when the table nears
 * gc_thresh3; entry removal (neigh:neigh_cleanup_and_release) tells when a
 * table bpftune grew is nearly empty again. Both are rare next to packets.
 */
#include "bpftune.bpf.h"
#include "neigh_table.h"

/*
 * A table filling up posts at most this often; user space grows it by a
 * step per event, so this bounds how fast a table can grow (25% per 50 ms
 * at learning rate 4) against how often user space dumps a device's entries.
 */
#define NEIGH_TABLE_FULL_INTERVAL_NS	(50 * 1000 * 1000ULL)
#define NEIGH_TABLE_EMPTY_INTERVAL_NS	(1000 * 1000 * 1000ULL)

/*
 * thresh3 as it was before bpftune grew the table, per family slot (0: IPv4,
 * 1: IPv6), set by user space; 0 means "not grown", and then removals are
 * not worth an event.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} neigh_table_floor SEC(".maps");

/* Last event per (family slot, scenario): the table is global, so is the limit. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} neigh_table_last_event SEC(".maps");

BPFTUNE_CONTRACT_STRUCT(neigh_table_event_data);
BPFTUNE_CONTRACT_ENUM(neigh_table_scenario);
BPFTUNE_CONTRACT_ENUM(neigh_table_sizes);
BPFTUNE_CONTRACT_ENUM(neigh_table_slot);

static __always_inline int family_slot(int family)
{
	if (family == AF_INET)
		return NEIGH_TABLE_SLOT_ARP;
	if (family == AF_INET6)
		return NEIGH_TABLE_SLOT_NDISC;
	return -1;
}

static __always_inline bool rate_limited(int slot, __u32 scenario, __u64 interval_ns)
{
	__u32 key = slot * 2 + scenario;
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&neigh_table_last_event, &key);

	if (!last)
		return true;
	if (*last && now - *last < interval_ns)
		return true;
	*last = now;
	return false;
}

static __always_inline void post(__u32 scenario, struct neigh_table *tbl, struct net_device *dev,
				 int gc_entries, bool overflow)
{
	struct bpftune_event event = {};
	struct neigh_table_event_data *data = (void *)event.data;
	struct net *net = BPF_CORE_READ(dev, nd_net.net);

	bpftune_event_init(&event, scenario, net);
	event.old_values[0] = BPF_CORE_READ(tbl, gc_thresh1);
	event.old_values[1] = BPF_CORE_READ(tbl, gc_thresh2);
	event.old_values[2] = BPF_CORE_READ(tbl, gc_thresh3);
	data->family = BPF_CORE_READ(tbl, family);
	data->ifindex = BPF_CORE_READ(dev, ifindex);
	data->entries = BPF_CORE_READ(tbl, entries.counter);
	data->gc_entries = gc_entries;
	data->overflow = overflow;
	bpf_probe_read_kernel_str(data->table, sizeof(data->table), BPF_CORE_READ(tbl, id));
	bpf_probe_read_kernel_str(data->dev, sizeof(data->dev), dev->name);
	bpftune_post(&event);
}

SEC("tp_btf/neigh_create")
int BPF_PROG(neigh_create, struct neigh_table *tbl, struct net_device *dev, const void *pkey,
	     const struct neighbour *n, bool exempt_from_gc)
{
	int gc_entries, thresh3, slot;
	bool overflow = !n;

	/* Permanent and externally learned entries are not counted against the thresholds. */
	if (exempt_from_gc || !dev)
		return 0;
	gc_entries = BPF_CORE_READ(tbl, gc_entries.counter);
	thresh3 = BPF_CORE_READ(tbl, gc_thresh3);
	if (!overflow && (thresh3 <= 0 || !bpftune_nearly_full(gc_entries, thresh3)))
		return 0;
	slot = family_slot(BPF_CORE_READ(tbl, family));
	if (slot < 0 || rate_limited(slot, NEIGH_TABLE_SCENARIO_NEARLY_FULL, NEIGH_TABLE_FULL_INTERVAL_NS))
		return 0;
	post(NEIGH_TABLE_SCENARIO_NEARLY_FULL, tbl, dev, gc_entries, overflow);
	return 0;
}

SEC("tp_btf/neigh_cleanup_and_release")
int BPF_PROG(neigh_cleanup_and_release, struct neighbour *n, int rc)
{
	struct neigh_table *tbl = BPF_CORE_READ(n, tbl);
	int gc_entries, thresh3, slot;
	__u32 key, *floor;

	slot = family_slot(BPF_CORE_READ(tbl, family));
	if (slot < 0)
		return 0;
	key = slot;
	floor = bpf_map_lookup_elem(&neigh_table_floor, &key);
	if (!floor || !*floor)
		return 0;
	thresh3 = BPF_CORE_READ(tbl, gc_thresh3);
	gc_entries = BPF_CORE_READ(tbl, gc_entries.counter);
	/* "Nearly empty": a quarter used or less, far from nearly full after one shrink step. */
	if (thresh3 <= (int)*floor || gc_entries > (thresh3 >> 2))
		return 0;
	if (rate_limited(slot, NEIGH_TABLE_SCENARIO_NEARLY_EMPTY, NEIGH_TABLE_EMPTY_INTERVAL_NS))
		return 0;
	post(NEIGH_TABLE_SCENARIO_NEARLY_EMPTY, tbl, BPF_CORE_READ(n, dev), gc_entries, false);
	return 0;
}
