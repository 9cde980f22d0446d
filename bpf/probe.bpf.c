// SPDX-License-Identifier: GPL-2.0
/*
 * One trivial program per attachment kind. The daemon loads and attaches
 * them one at a time to learn what this kernel accepts (src/core/attach-kinds.ts).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_tp_btf, struct task_struct *task)
{
	return 0;
}

SEC("raw_tp/sched_process_exit")
int probe_raw_tp(void *ctx)
{
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("fentry/tcp_sendmsg")
int BPF_PROG(probe_fentry, struct sock *sk)
{
	return 0;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(probe_kprobe, struct sock *sk)
{
	return 0;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *ops)
{
	return 1;
}

SEC("iter/task")
int probe_iter(struct bpf_iter__task *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
