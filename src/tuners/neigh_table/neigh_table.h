/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The neigh_table tuner's event payload (struct bpftune_event.data), defined
 * once here; the build generates neigh_table.contract.ts from its BTF.
 */
#ifndef NEIGH_TABLE_H
#define NEIGH_TABLE_H

enum neigh_table_scenario {
	NEIGH_TABLE_SCENARIO_NEARLY_FULL = 0,
	NEIGH_TABLE_SCENARIO_NEARLY_EMPTY = 1,
};

enum neigh_table_sizes {
	NEIGH_TABLE_NAME_LEN = 16,
	NEIGH_TABLE_IFNAME_LEN = 16,
};

/* Index into the neigh_table_floor map. */
enum neigh_table_slot {
	NEIGH_TABLE_SLOT_ARP = 0,
	NEIGH_TABLE_SLOT_NDISC = 1,
};

struct neigh_table_event_data {
	__u32 family;		/* AF_INET or AF_INET6 (tbl->family) */
	__u32 ifindex;		/* device of the entry that was created or removed */
	__u32 entries;		/* every entry in the table, all namespaces */
	__u32 gc_entries;	/* the entries gc_thresh1..3 are compared with */
	__u32 overflow;		/* 1: an allocation failed because the table was full */
	char table[NEIGH_TABLE_NAME_LEN];	/* tbl->id: "arp_cache", "ndisc_cache" */
	char dev[NEIGH_TABLE_IFNAME_LEN];
};

#endif
