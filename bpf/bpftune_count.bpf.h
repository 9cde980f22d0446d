/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counted rate limiting, for hooks that fire per dropped packet and must
 * tell the daemon how many were dropped, not post an event per drop: each
 * occurrence is counted per (namespace, kind); once an interval has passed
 * since the last event for that key, the count so far is handed back (and
 * starts again) so one event can carry it. Included by the tuners that need
 * it only (its map is created in every object that includes it).
 */
#ifndef BPFTUNE_COUNT_BPF_H
#define BPFTUNE_COUNT_BPF_H

#include "bpftune.bpf.h"

struct bpftune_count_key {
	__u64 netns_cookie;
	__u32 kind;
	__u32 pad;
};

struct bpftune_count_window {
	__u64 count;
	__u64 last_event_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bpftune_count_key);
	__type(value, struct bpftune_count_window);
} bpftune_counts SEC(".maps");

/*
 * Counts one occurrence. Returns 0 while within interval_ns of the key's
 * last event; else the occurrences since then (this one included), with
 * *since_ns the time since that event (0 for a key's first).
 */
static __always_inline __u64 bpftune_count_limited(__u64 netns_cookie, __u32 kind,
						   __u64 interval_ns, __u64 *since_ns)
{
	struct bpftune_count_key key = { .netns_cookie = netns_cookie, .kind = kind };
	struct bpftune_count_window fresh = {}, *w;
	__u64 now, count;

	w = bpf_map_lookup_elem(&bpftune_counts, &key);
	if (!w) {
		bpf_map_update_elem(&bpftune_counts, &key, &fresh, BPF_NOEXIST);
		w = bpf_map_lookup_elem(&bpftune_counts, &key);
		if (!w)
			return 0;
	}
	__sync_fetch_and_add(&w->count, 1);
	now = bpf_ktime_get_ns();
	if (now - w->last_event_ns < interval_ns)
		return 0;
	*since_ns = w->last_event_ns ? now - w->last_event_ns : 0;
	w->last_event_ns = now;
	count = w->count;
	/* A drop counted between the read and the reset goes to this event too: tolerated. */
	w->count = 0;
	return count;
}

#endif
