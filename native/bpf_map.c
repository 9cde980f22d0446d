// SPDX-License-Identifier: GPL-2.0
/*
 * NativeMap: element access to one map of a NativeObject. The handle holds a
 * reference on the object's state, not on the bpf_object itself: once the
 * object is closed the map is gone with it and every call throws EBADF.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpf_object.h"

struct map_handle {
	struct obj_state *st;
	struct bpf_map *map; /* valid only while st->obj is */
	char *subject;	     /* "<object>: map '<name>'" */
	uint32_t key_size;
	/* What lookup/update exchange: all CPUs' values for per-CPU maps. */
	uint32_t value_size;
	uint32_t max_entries;
};

static bool is_percpu(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
		return true;
	default:
		return false;
	}
}

static void finalize_map(napi_env env, void *data, void *hint)
{
	struct map_handle *mh = data;

	(void)env;
	(void)hint;
	obj_state_release(mh->st);
	free(mh->subject);
	free(mh);
}

/* The map's fd, or -1 with an exception pending when it cannot be used. */
static int usable_fd(napi_env env, struct map_handle *mh)
{
	if (!mh->st->obj) {
		throw_plain(env, EBADF, "%s: the BPF object is closed", mh->subject);
		return -1;
	}
	if (mh->st->phase != OBJ_LOADED) {
		throw_plain(env, EINVAL, "%s: the object is not loaded", mh->subject);
		return -1;
	}
	return bpf_map__fd(mh->map);
}

static bool sized_buffer(napi_env env, struct map_handle *mh, napi_value value, const char *what,
			 uint32_t want, void **data)
{
	size_t len;

	if (!arg_buffer(env, value, what, data, &len))
		return false;
	if (len != want) {
		throw_plain(env, EINVAL, "%s: %s is %zu bytes, the map needs %u", mh->subject, what,
			    len, want);
		return false;
	}
	return true;
}

static napi_value map_lookup(napi_env env, napi_callback_info info)
{
	napi_value argv[1], result;
	struct map_handle *mh = unwrap_handle(env, info, HANDLE_MAP, 1, argv, NULL);
	void *key, *value;
	int fd, err;

	if (!mh || !sized_buffer(env, mh, argv[0], "key", mh->key_size, &key) ||
	    (fd = usable_fd(env, mh)) < 0)
		return NULL;
	NAPI_CALL(env, napi_create_buffer(env, mh->value_size, &value, &result), NULL);
	err = bpf_map_lookup_elem(fd, mh->key_size ? key : NULL, value);
	if (err == -ENOENT) {
		NAPI_CALL(env, napi_get_null(env, &result), NULL);
		return result;
	}
	if (err) {
		throw_errno(env, err, "%s: bpf_map_lookup_elem", mh->subject);
		return NULL;
	}
	return result;
}

static napi_value map_update(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct map_handle *mh = unwrap_handle(env, info, HANDLE_MAP, 3, argv, NULL);
	napi_valuetype t;
	int64_t flags = 0;
	void *key, *value;
	int fd, err;

	if (!mh || !sized_buffer(env, mh, argv[0], "key", mh->key_size, &key) ||
	    !sized_buffer(env, mh, argv[1], "value", mh->value_size, &value))
		return NULL;
	NAPI_CALL(env, napi_typeof(env, argv[2], &t), NULL);
	if (t != napi_undefined && !arg_int64(env, argv[2], "flags", &flags))
		return NULL;
	if (flags < 0 || flags > UINT32_MAX) {
		throw_plain(env, EINVAL, "%s: update: invalid flags %lld", mh->subject,
			    (long long)flags);
		return NULL;
	}
	if ((fd = usable_fd(env, mh)) < 0)
		return NULL;
	err = bpf_map_update_elem(fd, mh->key_size ? key : NULL, value, (uint64_t)flags);
	if (err)
		throw_errno(env, err, "%s: bpf_map_update_elem", mh->subject);
	return NULL;
}

static napi_value map_delete(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct map_handle *mh = unwrap_handle(env, info, HANDLE_MAP, 1, argv, NULL);
	void *key;
	int fd, err;

	if (!mh || !sized_buffer(env, mh, argv[0], "key", mh->key_size, &key) ||
	    (fd = usable_fd(env, mh)) < 0)
		return NULL;
	err = bpf_map_delete_elem(fd, mh->key_size ? key : NULL);
	if (err == -ENOENT)
		return make_bool(env, false);
	if (err) {
		throw_errno(env, err, "%s: bpf_map_delete_elem", mh->subject);
		return NULL;
	}
	return make_bool(env, true);
}

static napi_value map_keys(napi_env env, napi_callback_info info)
{
	struct map_handle *mh = unwrap_handle(env, info, HANDLE_MAP, 0, NULL, NULL);
	napi_value list, item;
	void *prev = NULL, *next;
	uint32_t count = 0;
	int fd, err;

	if (!mh || (fd = usable_fd(env, mh)) < 0)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &list), NULL);
	/*
	 * Each key is written straight into its own Buffer, which then serves
	 * as the cursor for the next step. A hash walk restarts when its cursor
	 * is deleted concurrently, so bound it by the map's capacity.
	 */
	while (!mh->max_entries || count < mh->max_entries) {
		NAPI_CALL(env, napi_create_buffer(env, mh->key_size, &next, &item), NULL);
		err = bpf_map_get_next_key(fd, prev, next);
		if (err == -ENOENT)
			break;
		if (err) {
			throw_errno(env, err, "%s: bpf_map_get_next_key", mh->subject);
			return NULL;
		}
		NAPI_CALL(env, napi_set_element(env, list, count++, item), NULL);
		prev = next;
	}
	return list;
}

static napi_value map_fd(napi_env env, napi_callback_info info)
{
	struct map_handle *mh = unwrap_handle(env, info, HANDLE_MAP, 0, NULL, NULL);

	if (!mh)
		return NULL;
	return make_i32(env, mh->st->obj ? bpf_map__fd(mh->map) : -1);
}

napi_value new_map_handle(napi_env env, struct obj_state *st, struct bpf_map *map)
{
	struct map_handle *mh = calloc(1, sizeof(*mh));
	napi_value handle;
	int ncpus;

	if (!mh || asprintf(&mh->subject, "%s: map '%s'", st->name, bpf_map__name(map)) < 0) {
		free(mh);
		throw_errno(env, ENOMEM, "%s: map", st->name);
		return NULL;
	}
	mh->map = map;
	mh->key_size = bpf_map__key_size(map);
	mh->value_size = bpf_map__value_size(map);
	mh->max_entries = bpf_map__max_entries(map);
	if (is_percpu(bpf_map__type(map))) {
		ncpus = libbpf_num_possible_cpus();
		if (ncpus < 0) {
			throw_errno(env, ncpus, "%s: libbpf_num_possible_cpus", mh->subject);
			free(mh->subject);
			free(mh);
			return NULL;
		}
		/* The kernel lays out one 8-byte-aligned slot per possible CPU. */
		mh->value_size = ((mh->value_size + 7) & ~7U) * (uint32_t)ncpus;
	}
	mh->st = st;
	obj_state_hold(st);
	handle = new_handle(env, HANDLE_MAP, mh, finalize_map);
	if (!handle) {
		finalize_map(env, mh, NULL);
		return NULL;
	}
	if (!set_readonly(env, handle, "name", make_string(env, bpf_map__name(map))) ||
	    !set_readonly(env, handle, "keySize", make_u32(env, mh->key_size)) ||
	    !set_readonly(env, handle, "valueSize", make_u32(env, mh->value_size)))
		return NULL;
	return handle;
}

bool init_bpf_map(napi_env env)
{
	static const napi_property_descriptor props[] = {
		{ "fd", NULL, NULL, map_fd, NULL, NULL, napi_enumerable, NULL },
		{ "lookup", NULL, map_lookup, NULL, NULL, NULL, napi_default_method, NULL },
		{ "update", NULL, map_update, NULL, NULL, NULL, napi_default_method, NULL },
		{ "delete", NULL, map_delete, NULL, NULL, NULL, napi_default_method, NULL },
		{ "keys", NULL, map_keys, NULL, NULL, NULL, napi_default_method, NULL },
	};

	return define_handle_class(env, HANDLE_MAP, "NativeMap", props,
				   sizeof(props) / sizeof(props[0]));
}
