// SPDX-License-Identifier: GPL-2.0
/*
 * Never loaded: gives struct bpftune_event and its sizes a BTF description
 * (tuners only use it on the stack, which emits none), from which the build
 * generates the core's decoder (src/core/bpftune_event.contract.ts).
 */
#include "vmlinux.h"
#include "bpftune_event.h"

struct bpftune_event *bpftune_event_layout __attribute__((unused));
enum bpftune_event_sizes *bpftune_event_sizes __attribute__((unused));

char LICENSE[] __attribute__((section("license"), used)) = "GPL";
