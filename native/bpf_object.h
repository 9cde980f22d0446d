/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state a NativeObject shares with the NativeMap handles taken from it.
 * A map handle may outlive its object's close(), so the bpf_object pointer is
 * cleared on close and every map operation checks it; the state itself is
 * freed when the object handle and all map handles are gone.
 */
#ifndef BPFTUNE_BPF_OBJECT_H
#define BPFTUNE_BPF_OBJECT_H

#include <bpf/libbpf.h>
#include "addon.h"

enum obj_phase {
	OBJ_OPENED,
	OBJ_LOADED,
	/* libbpf refuses a second load, and rodata must not be touched again. */
	OBJ_LOAD_FAILED,
};

struct obj_state {
	struct bpf_object *obj; /* NULL once closed */
	char *name;		/* file basename, for messages */
	enum obj_phase phase;
	unsigned int refs;
};

void obj_state_hold(struct obj_state *st);
void obj_state_release(struct obj_state *st);

napi_value new_map_handle(napi_env env, struct obj_state *st, struct bpf_map *map);

#endif
