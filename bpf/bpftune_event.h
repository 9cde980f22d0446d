/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one record every tuner's BPF program posts to the shared ring buffer.
 *
 * This header is the single definition of the layout. The build generates
 * the TypeScript decoder (src/core/bpftune_event.contract.ts) from the BTF
 * clang emits for it (bpf/event_layout.bpf.c), so the two cannot drift.
 */
#ifndef BPFTUNE_EVENT_H
#define BPFTUNE_EVENT_H

/* An enum, not #defines, so the sizes reach BTF and the generated contract. */
enum bpftune_event_sizes {
	BPFTUNE_MAX_VALUES = 3,
	BPFTUNE_EVENT_DATA_LEN = 128,
};

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
