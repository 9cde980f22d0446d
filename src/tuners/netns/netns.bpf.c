// SPDX-License-Identifier: GPL-2.0
/*
 * Posts an event when a task creates a network namespace, so the daemon can
 * map the new cookie to a path before the first event from inside it needs
 * one. clone/clone3/fork all pass task_newtask; unshare(CLONE_NEWNET) is seen
 * at syscall exit, when the caller is already inside the new namespace.
 * Namespaces are created rarely, so nothing here needs rate limiting.
 */
#include "bpftune.bpf.h"

#define CLONE_NEWNET 0x40000000

enum netns_scenario {
	NETNS_SCENARIO_CREATED = 0,
};
BPFTUNE_CONTRACT_ENUM(netns_scenario);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} unsharing_net SEC(".maps");

static __always_inline void post_created(struct net *net)
{
	struct bpftune_event event = {};

	bpftune_event_init(&event, NETNS_SCENARIO_CREATED, net);
	bpftune_post(&event);
}

SEC("tp_btf/task_newtask")
int BPF_PROG(netns_new_task, struct task_struct *task, u64 clone_flags)
{
	if (clone_flags & CLONE_NEWNET)
		post_created(bpftune_task_net(task));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unshare")
int netns_unshare_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u8 one = 1;

	if (ctx->args[0] & CLONE_NEWNET)
		bpf_map_update_elem(&unsharing_net, &tid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_unshare")
int netns_unshare_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&unsharing_net, &tid))
		return 0;
	bpf_map_delete_elem(&unsharing_net, &tid);
	if (ctx->ret == 0)
		post_created(bpftune_task_net(bpf_get_current_task_btf()));
	return 0;
}
