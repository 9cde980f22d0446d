// SPDX-License-Identifier: GPL-2.0
/*
 * route_table has no BPF program, on purpose. The IPv6 destination count it
 * watches is a kernel counter already (/proc/net/rt6_stats, per namespace),
 * and the hooks that would see destinations being made are either per
 * lookup (tracepoint fib6:fib6_table_lookup fires for every routed packet)
 * or internal functions (ip6_dst_alloc, ip6_dst_gc) that need fentry or
 * kprobes, which this design uses only as a fallback. A counter read every
 * few seconds per namespace costs less than any of them. See README.md.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
