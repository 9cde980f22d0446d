// SPDX-License-Identifier: GPL-2.0
/*
 * Never loaded: gives struct bpftune_event a BTF description (tuners only
 * use it on the stack, which emits none) so test/event-layout.test.ts can
 * check the TypeScript decoder against what clang actually laid out.
 */
#include "vmlinux.h"
#include "bpftune_event.h"

struct bpftune_event bpftune_event_layout = {};

char LICENSE[] __attribute__((section("license"), used)) = "GPL";
