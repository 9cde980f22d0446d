/**
 * /proc/net/rt6_stats: seven hex fields per namespace, printed by
 * rt6_stats_seq_show() in net/ipv6/route.c as fib_nodes, fib_route_nodes,
 * fib_rt_alloc, fib_rt_entries, fib_rt_cache, the destination entry count
 * (dst_entries_get_slow of the namespace's ip6_dst_ops: cached clones such
 * as PMTU exceptions, the entries net.ipv6.route.max_size limits) and
 * fib_discarded_routes.
 */
export interface Rt6Stats {
  fibNodes: number;
  fibRouteNodes: number;
  fibRtAlloc: number;
  fibRtEntries: number;
  fibRtCache: number;
  dstEntries: number;
  fibDiscardedRoutes: number;
}

export function parseRt6Stats(text: string): Rt6Stats {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 7 || !fields.every((f) => /^[0-9a-f]+$/i.test(f))) {
    throw new Error(`/proc/net/rt6_stats: expected 7 hex fields, got '${text.trim()}'`);
  }
  const [fibNodes, fibRouteNodes, fibRtAlloc, fibRtEntries, fibRtCache, dstEntries, fibDiscardedRoutes] = fields.map((f) => parseInt(f, 16)) as [
    number, number, number, number, number, number, number,
  ];
  return { fibNodes, fibRouteNodes, fibRtAlloc, fibRtEntries, fibRtCache, dstEntries, fibDiscardedRoutes };
}
