/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one record every tuner's BPF program posts to the shared ring buffer.
 *
 * This header is the single definition of the layout. The TypeScript decoder
 * (src/core/event.ts) mirrors it, and test/event-layout.test.ts checks the
 * mirror against the BTF that clang emits for this struct, so the two sides
 * cannot drift silently.
 */
#ifndef BPFTUNE_EVENT_H
#define BPFTUNE_EVENT_H

#define BPFTUNE_MAX_VALUES	3
#define BPFTUNE_EVENT_DATA_LEN	128

struct bpftune_event {
	__u32 tuner_id;		/* assigned by the daemon at load (rodata) */
	__u32 scenario_id;	/* the tuner's own scenario numbering */
	__u64 netns_cookie;	/* namespace the condition was seen in */
	__u32 netns_inum;	/* its nsfs inode, to find a path to it */
	__u32 pid;		/* task that triggered it, 0 if none */
	__u64 ktime_ns;		/* bpf_ktime_get_ns() when posted */
	__s64 old_values[BPFTUNE_MAX_VALUES];
	__s64 new_values[BPFTUNE_MAX_VALUES];
	__u8 data[BPFTUNE_EVENT_DATA_LEN];	/* tuner-specific payload */
};

#endif
