/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by every tuner's BPF side: the event ring buffer, the constants the
 * daemon fills in before load, learning-rate arithmetic, netns helpers and a
 * per-(namespace, scenario) rate limiter.
 */
#ifndef BPFTUNE_BPF_H
#define BPFTUNE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpftune_event.h"

/* Address families: vmlinux.h has the kernel's types, not its macros. */
#define AF_INET		2
#define AF_INET6	10

/*
 * A peer at a loopback address, from its family and addresses in network
 * order: 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104 (a dual-stack socket's
 * IPv4 peer). Such a connection has no path to tune.
 */
static __always_inline bool bpftune_loopback_peer(__u16 family, __be32 v4, const __be32 *v6)
{
	if (family == AF_INET)
		return (bpf_ntohl(v4) >> 24) == 127;
	if (family != AF_INET6 || v6[0] || v6[1])
		return false;
	if (!v6[2])
		return v6[3] == bpf_htonl(1);
	return v6[2] == bpf_htonl(0xffff) && (bpf_ntohl(v6[3]) >> 24) == 127;
}

/*
 * One ring buffer for all tuners. The daemon creates it and every object
 * reuses its fd (bpf_map__reuse_fd), so the definition here only has to
 * match type and size.
 */
#define BPFTUNE_RING_BUFFER_SIZE (256 * 1024)
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BPFTUNE_RING_BUFFER_SIZE);
} ring_buffer SEC(".maps");

/*
 * The contract with the TypeScript side: clang emits BTF only for types
 * something in the object uses, and an event payload built on the stack or
 * an enum of scenario ids is not such a use. These keep a type in BTF (a
 * null pointer in .rodata, never read) so the build can generate the
 * tuner's <name>.contract.ts from it: every named struct and enum declared
 * in the tuner's header and .bpf.c must be in BTF, or the build says which
 * line to add.
 */
#define BPFTUNE_CONTRACT_STRUCT(name) \
	struct name *const volatile bpftune_contract_struct_##name = 0
#define BPFTUNE_CONTRACT_ENUM(name) \
	enum name *const volatile bpftune_contract_enum_##name = 0

/* Filled in by the daemon before load (see TunerHost). */
const volatile __u32 bpftune_tuner_id = 0;
/* s = 6 - learning rate: "nearly full" is within limit >> s, growth is limit >> s. */
const volatile __u32 bpftune_learning_shift = 2;
/* The daemon's tgid, so tuners can ignore the daemon's own actions. */
const volatile __u32 bpftune_daemon_tgid = 0;
/*
 * Advisory mode (--advise): a BPF side that acts on its own (sets a socket
 * option) must only report what it would do.
 */
const volatile __u32 bpftune_advisory = 0;

static __always_inline __u64 bpftune_delta(__u64 limit)
{
	return limit >> bpftune_learning_shift;
}

static __always_inline bool bpftune_nearly_full(__u64 value, __u64 limit)
{
	return value + bpftune_delta(limit) >= limit;
}

static __always_inline __u64 bpftune_grow(__u64 limit)
{
	return limit + bpftune_delta(limit);
}

static __always_inline struct net *bpftune_task_net(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, net_ns);
}

static __always_inline __u64 bpftune_net_cookie(struct net *net)
{
	return BPF_CORE_READ(net, net_cookie);
}

static __always_inline __u32 bpftune_net_inum(struct net *net)
{
	return BPF_CORE_READ(net, ns.inum);
}

/*
 * An object whose programs may not call bpf_get_current_pid_tgid defines
 * BPFTUNE_EVENT_NO_PID before including this header: sock_ops programs, which
 * 6.1's verifier refuses it ("unknown func"), and which mostly run in softirq
 * where the current task is not the socket's anyway.
 */
static __always_inline void bpftune_event_init(struct bpftune_event *event,
					       __u32 scenario_id, struct net *net)
{
	event->tuner_id = bpftune_tuner_id;
	event->scenario_id = scenario_id;
	event->netns_cookie = bpftune_net_cookie(net);
	event->netns_inum = bpftune_net_inum(net);
#ifdef BPFTUNE_EVENT_NO_PID
	event->pid = 0;
#else
	event->pid = bpf_get_current_pid_tgid() >> 32;
#endif
	event->ktime_ns = bpf_ktime_get_ns();
}

static __always_inline long bpftune_post(struct bpftune_event *event)
{
	return bpf_ringbuf_output(&ring_buffer, event, sizeof(*event), 0);
}

/*
 * Hooks that can fire often must not post an event per call: at most one per
 * (namespace, scenario) per interval reaches the daemon. A lost race between
 * two CPUs posts one extra event, which the daemon tolerates.
 */
struct bpftune_rate_key {
	__u64 netns_cookie;
	__u32 scenario_id;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bpftune_rate_key);
	__type(value, __u64);
} bpftune_rate_limit SEC(".maps");

static __always_inline bool bpftune_rate_limited(__u64 netns_cookie, __u32 scenario_id,
						 __u64 interval_ns)
{
	struct bpftune_rate_key key = { .netns_cookie = netns_cookie,
					.scenario_id = scenario_id };
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&bpftune_rate_limit, &key);

	if (last) {
		if (now - *last < interval_ns)
			return true;
		*last = now;
		return false;
	}
	bpf_map_update_elem(&bpftune_rate_limit, &key, &now, BPF_ANY);
	return false;
}

char LICENSE[] SEC("license") = "GPL";

#endif
