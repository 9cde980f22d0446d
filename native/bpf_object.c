// SPDX-License-Identifier: GPL-2.0
/*
 * NativeObject (a libbpf bpf_object: programs, constants, load, attach,
 * stats) and NativeLink (an attachment). Everything here runs on the JS
 * thread; libbpf is not used from worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "bpf_object.h"

/*
 * Capabilities raised (on the JS thread) around each libbpf call that makes a
 * privileged bpf() or perf_event_open(); measured on Linux 6.18, see
 * src/core/capabilities.ts. CAP_SYS_RESOURCE only where permitted: libbpf
 * raises RLIMIT_MEMLOCK on kernels that still charge BPF memory to it.
 */
#define LOAD_CAPS                                                                              \
	(CAP_BIT(CAP_BPF) | CAP_BIT(CAP_PERFMON) | CAP_BIT(CAP_NET_ADMIN) | CAP_BIT(CAP_SYS_RESOURCE))
#define CGROUP_ATTACH_CAPS (CAP_BIT(CAP_BPF) | CAP_BIT(CAP_NET_ADMIN))
#define ATTACH_CAPS (CAP_BIT(CAP_BPF) | CAP_BIT(CAP_PERFMON))

struct link_handle {
	struct bpf_link *link; /* NULL once closed */
	char *name;	       /* "<object>: prog '<program>'", for messages */
};

void obj_state_hold(struct obj_state *st)
{
	st->refs++;
}

static void obj_state_close(struct obj_state *st)
{
	if (st->obj) {
		bpf_object__close(st->obj);
		st->obj = NULL;
	}
}

void obj_state_release(struct obj_state *st)
{
	if (--st->refs)
		return;
	obj_state_close(st);
	free(st->name);
	free(st);
}

static void finalize_object(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	obj_state_release(data);
}

static struct obj_state *open_state(napi_env env, napi_callback_info info, size_t argc,
				    napi_value *argv)
{
	struct obj_state *st = unwrap_handle(env, info, HANDLE_OBJECT, argc, argv, NULL);

	if (st && !st->obj) {
		throw_plain(env, EBADF, "%s: the BPF object is closed", st->name);
		return NULL;
	}
	return st;
}

static bool require_phase(napi_env env, struct obj_state *st, enum obj_phase phase,
			  const char *what)
{
	if (st->phase == phase)
		return true;
	if (st->phase == OBJ_LOADED)
		throw_plain(env, EBUSY, "%s: %s: the object is already loaded", st->name, what);
	else if (st->phase == OBJ_LOAD_FAILED)
		throw_plain(env, EINVAL, "%s: %s: the object failed to load; open it again", st->name,
			    what);
	else
		throw_plain(env, EINVAL, "%s: %s: the object is not loaded", st->name, what);
	return false;
}

static struct bpf_program *find_program(napi_env env, struct obj_state *st, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(st->obj, name);

	if (!prog)
		throw_plain(env, ENOENT, "%s: no program named '%s'", st->name, name);
	return prog;
}

static napi_value open_object(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], handle;
	struct obj_state *st;
	const char *base;
	char *file, *log;
	int err;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "file", &file))
		return NULL;
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->name = strdup(base))) {
		free(st);
		free(file);
		throw_errno(env, ENOMEM, "openObject");
		return NULL;
	}
	libbpf_log_reset();
	st->obj = bpf_object__open_file(file, NULL);
	if (!st->obj) {
		err = errno;
		log = libbpf_log_take();
		throw_errno_detail(env, err, log, "%s: bpf_object__open_file", file);
		free(log);
		free(file);
		free(st->name);
		free(st);
		return NULL;
	}
	free(file);
	st->refs = 1;
	handle = new_handle(env, HANDLE_OBJECT, st, finalize_object);
	if (!handle) {
		obj_state_release(st);
		return NULL;
	}
	if (!set_readonly(env, handle, "name", make_string(env, st->name)))
		return NULL;
	return handle;
}

static napi_value object_programs(napi_env env, napi_callback_info info)
{
	struct obj_state *st = open_state(env, info, 0, NULL);
	struct bpf_program *prog;
	napi_value list, item;
	uint32_t i = 0;

	if (!st)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &list), NULL);
	bpf_object__for_each_program(prog, st->obj) {
		NAPI_CALL(env, napi_create_object(env, &item), NULL);
		if (!set_prop(env, item, "name", make_string(env, bpf_program__name(prog))) ||
		    !set_prop(env, item, "section", make_string(env, bpf_program__section_name(prog))) ||
		    !set_prop(env, item, "type", make_u32(env, bpf_program__type(prog))) ||
		    !set_prop(env, item, "autoload", make_bool(env, bpf_program__autoload(prog))))
			return NULL;
		NAPI_CALL(env, napi_set_element(env, list, i++, item), NULL);
	}
	return list;
}

static napi_value object_maps(napi_env env, napi_callback_info info)
{
	struct obj_state *st = open_state(env, info, 0, NULL);
	struct bpf_map *map;
	napi_value list, item;
	uint32_t i = 0;

	if (!st)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &list), NULL);
	bpf_object__for_each_map(map, st->obj) {
		NAPI_CALL(env, napi_create_object(env, &item), NULL);
		if (!set_prop(env, item, "name", make_string(env, bpf_map__name(map))) ||
		    !set_prop(env, item, "type", make_u32(env, bpf_map__type(map))) ||
		    !set_prop(env, item, "keySize", make_u32(env, bpf_map__key_size(map))) ||
		    !set_prop(env, item, "valueSize", make_u32(env, bpf_map__value_size(map))) ||
		    !set_prop(env, item, "maxEntries", make_u32(env, bpf_map__max_entries(map))))
			return NULL;
		NAPI_CALL(env, napi_set_element(env, list, i++, item), NULL);
	}
	return list;
}

static napi_value object_set_autoload(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct obj_state *st = open_state(env, info, 2, argv);
	struct bpf_program *prog;
	bool autoload;
	char *name;
	int err;

	if (!st || !arg_string(env, argv[0], "program", &name))
		return NULL;
	if (!arg_bool(env, argv[1], "autoload", &autoload) ||
	    !require_phase(env, st, OBJ_OPENED, "setAutoload") ||
	    !(prog = find_program(env, st, name))) {
		free(name);
		return NULL;
	}
	err = bpf_program__set_autoload(prog, autoload);
	if (err)
		throw_errno(env, err, "%s: prog '%s': bpf_program__set_autoload", st->name, name);
	free(name);
	return NULL;
}

/*
 * Integers up to 64 bits, as number or bigint. A value that fits neither the
 * signed nor the unsigned range of the variable is refused, not truncated.
 */
static bool const_value(napi_env env, napi_value value, uint32_t size, const char *what,
			uint64_t *bits)
{
	napi_valuetype t;
	bool lossless = false, negative;
	int64_t s = 0;
	uint64_t u = 0, umax;

	NAPI_CALL(env, napi_typeof(env, value, &t), false);
	if (t == napi_bigint) {
		NAPI_CALL(env, napi_get_value_bigint_int64(env, value, &s, &lossless), false);
		if (!lossless || s >= 0) {
			NAPI_CALL(env, napi_get_value_bigint_uint64(env, value, &u, &lossless), false);
			if (!lossless) {
				throw_plain(env, ERANGE, "%s: does not fit in 64 bits", what);
				return false;
			}
			s = 0;
		}
	} else if (t == napi_number) {
		if (!arg_int64(env, value, what, &s))
			return false;
		if (s >= 0) {
			u = (uint64_t)s;
			s = 0;
		}
	} else {
		throw_type(env, "%s: value must be a number or bigint", what);
		return false;
	}
	negative = s < 0;
	umax = size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
	if (negative ? (size < 8 && s < -(int64_t)(1ULL << (8 * size - 1))) : u > umax) {
		throw_plain(env, ERANGE, "%s: value does not fit in %u bytes", what, size);
		return false;
	}
	*bits = negative ? (uint64_t)s : u;
	return true;
}

static void store_bits(char *dst, uint64_t bits, uint32_t size)
{
	uint8_t v8 = (uint8_t)bits;
	uint16_t v16 = (uint16_t)bits;
	uint32_t v32 = (uint32_t)bits;

	/* Through the native integer types, so the layout matches the BPF side's endianness. */
	switch (size) {
	case 1:
		memcpy(dst, &v8, 1);
		break;
	case 2:
		memcpy(dst, &v16, 2);
		break;
	case 4:
		memcpy(dst, &v32, 4);
		break;
	default:
		memcpy(dst, &bits, 8);
		break;
	}
}

static struct bpf_map *rodata_map(struct bpf_object *obj)
{
	struct bpf_map *map;
	const char *name;
	size_t len;

	/* libbpf names it "<object prefix>.rodata". */
	bpf_object__for_each_map(map, obj) {
		name = bpf_map__name(map);
		len = strlen(name);
		if (bpf_map__is_internal(map) && len >= 7 && !strcmp(name + len - 7, ".rodata"))
			return map;
	}
	return NULL;
}

/* Finds var in the ".rodata" DATASEC: its offset and size. */
static int find_rodata_var(struct bpf_object *obj, const char *var, uint32_t *offset,
			   uint32_t *size)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vsi;
	const struct btf_type *sec, *t;
	int id, i;

	if (!btf)
		return -ENODATA;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	sec = btf__type_by_id(btf, id);
	vsi = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vsi++) {
		t = btf__type_by_id(btf, vsi->type);
		if (!t || !btf_is_var(t) || strcmp(btf__name_by_offset(btf, t->name_off), var))
			continue;
		*offset = vsi->offset;
		*size = vsi->size;
		return 0;
	}
	return -ENOENT;
}

static napi_value object_set_const(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct obj_state *st = open_state(env, info, 2, argv);
	struct bpf_map *map;
	uint32_t offset = 0, size = 0;
	uint64_t bits;
	const void *initial;
	size_t map_size = 0;
	char *name = NULL, *what = NULL, *copy = NULL;
	int err;

	if (!st || !arg_string(env, argv[0], "name", &name))
		return NULL;
	if (asprintf(&what, "%s: setConst '%s'", st->name, name) < 0) {
		what = NULL;
		throw_errno(env, ENOMEM, "%s: setConst", st->name);
		goto out;
	}
	if (!require_phase(env, st, OBJ_OPENED, "setConst"))
		goto out;
	err = find_rodata_var(st->obj, name, &offset, &size);
	if (err == -ENODATA) {
		throw_plain(env, ENOENT, "%s: the object has no BTF (compile with -g)", what);
		goto out;
	}
	if (err) {
		throw_plain(env, ENOENT, "%s: no such const volatile variable in .rodata", what);
		goto out;
	}
	if (size != 1 && size != 2 && size != 4 && size != 8) {
		throw_plain(env, EINVAL, "%s: variable is %u bytes; only 1, 2, 4 or 8 are supported",
			    what, size);
		goto out;
	}
	if (!const_value(env, argv[1], size, what, &bits))
		goto out;
	map = rodata_map(st->obj);
	initial = map ? bpf_map__initial_value(map, &map_size) : NULL;
	if (!initial || (size_t)offset + size > map_size) {
		throw_plain(env, ENOENT, "%s: the .rodata map does not hold the variable", what);
		goto out;
	}
	/* libbpf hands out the initial value read-only; set_initial_value is the sanctioned write. */
	copy = malloc(map_size);
	if (!copy) {
		throw_errno(env, ENOMEM, "%s", what);
		goto out;
	}
	memcpy(copy, initial, map_size);
	store_bits(copy + offset, bits, size);
	err = bpf_map__set_initial_value(map, copy, map_size);
	if (err)
		throw_errno(env, err, "%s: bpf_map__set_initial_value", what);
out:
	free(copy);
	free(what);
	free(name);
	return NULL;
}

static napi_value object_reuse_map(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct obj_state *st = open_state(env, info, 2, argv);
	struct bpf_map *map;
	int64_t fd;
	char *name;
	int err;

	if (!st || !arg_string(env, argv[0], "map", &name))
		return NULL;
	if (!arg_int64(env, argv[1], "fd", &fd) || !require_phase(env, st, OBJ_OPENED, "reuseMap"))
		goto out;
	if (fd < 0 || fd > INT32_MAX) {
		throw_plain(env, EBADF, "%s: reuseMap '%s': %lld is not a file descriptor", st->name,
			    name, (long long)fd);
		goto out;
	}
	map = bpf_object__find_map_by_name(st->obj, name);
	if (!map) {
		throw_plain(env, ENOENT, "%s: no map named '%s'", st->name, name);
		goto out;
	}
	err = bpf_map__reuse_fd(map, (int)fd);
	if (err)
		throw_errno(env, err, "%s: map '%s': bpf_map__reuse_fd", st->name, name);
out:
	free(name);
	return NULL;
}

/* libbpf names the failing program only in its log ("libbpf: prog 'x': ..."). */
static char *failed_program(const char *log)
{
	const char *p = log, *start, *end, *found = NULL;

	while ((p = strstr(p, "prog '"))) {
		start = p + 6;
		end = strchr(start, '\'');
		if (!end)
			break;
		if (!found)
			found = start;
		/* Prefer the line that reports the failure over earlier chatter. */
		if (memmem(end, strcspn(end, "\n"), "fail", 4)) {
			found = start;
			break;
		}
		p = end;
	}
	if (!found)
		return NULL;
	return strndup(found, strcspn(found, "'"));
}

static napi_value object_load(napi_env env, napi_callback_info info)
{
	struct obj_state *st = open_state(env, info, 0, NULL);
	char *log, *prog = NULL;
	uint64_t raised;
	int err;

	if (!st || !require_phase(env, st, OBJ_OPENED, "load"))
		return NULL;
	libbpf_log_reset();
	raised = caps_raise(LOAD_CAPS);
	err = bpf_object__load(st->obj);
	caps_restore(raised);
	if (!err) {
		st->phase = OBJ_LOADED;
		return NULL;
	}
	st->phase = OBJ_LOAD_FAILED;
	log = libbpf_log_take();
	if (log)
		prog = failed_program(log);
	if (prog)
		throw_errno_detail(env, err, log, "%s: prog '%s': bpf_object__load", st->name, prog);
	else
		throw_errno_detail(env, err, log, "%s: bpf_object__load", st->name);
	free(prog);
	free(log);
	return NULL;
}

static void finalize_link(napi_env env, void *data, void *hint)
{
	struct link_handle *lh = data;

	(void)env;
	(void)hint;
	if (lh->link)
		bpf_link__destroy(lh->link);
	free(lh->name);
	free(lh);
}

static napi_value object_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[2], handle = NULL;
	struct obj_state *st = open_state(env, info, 2, argv);
	struct bpf_program *prog;
	struct bpf_link *link;
	struct link_handle *lh;
	char *name = NULL, *cgroup = NULL, *subject = NULL, *log = NULL;
	uint64_t raised;
	int fd, err;

	if (!st || !arg_string(env, argv[0], "program", &name))
		return NULL;
	if (!arg_optional_string(env, argv[1], "cgroupPath", &cgroup))
		goto out;
	if (asprintf(&subject, "%s: prog '%s'", st->name, name) < 0) {
		subject = NULL;
		throw_errno(env, ENOMEM, "%s: attach", st->name);
		goto out;
	}
	if (!require_phase(env, st, OBJ_LOADED, "attach") || !(prog = find_program(env, st, name)))
		goto out;
	if (bpf_program__fd(prog) < 0) {
		throw_plain(env, EINVAL, "%s: attach: the program was not loaded (autoload is off)",
			    subject);
		goto out;
	}
	if (cgroup) {
		fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			throw_errno(env, errno, "%s: open %s", subject, cgroup);
			goto out;
		}
		libbpf_log_reset();
		raised = caps_raise(CGROUP_ATTACH_CAPS);
		link = bpf_program__attach_cgroup(prog, fd);
		err = errno;
		caps_restore(raised);
		/* The kernel holds the cgroup for the link; our fd is not needed. */
		close(fd);
		if (!link) {
			log = libbpf_log_take();
			throw_errno_detail(env, err, log, "%s: bpf_program__attach_cgroup %s", subject,
					   cgroup);
			goto out;
		}
	} else {
		libbpf_log_reset();
		raised = caps_raise(ATTACH_CAPS);
		link = bpf_program__attach(prog);
		err = errno;
		caps_restore(raised);
		/*
		 * Debian's kernels (seen on 6.1) patch perf_event_open so that their
		 * default perf_event_paranoid=3 refuses it (EACCES) without
		 * CAP_SYS_ADMIN, CAP_PERFMON notwithstanding: a tracepoint attach is
		 * retried once with CAP_SYS_ADMIN raised too.
		 */
		if (!link && (err == EACCES || err == EPERM)) {
			libbpf_log_reset();
			raised = caps_raise(ATTACH_CAPS | CAP_BIT(CAP_SYS_ADMIN));
			link = bpf_program__attach(prog);
			err = errno;
			caps_restore(raised);
		}
		if (!link) {
			/* libbpf says what it could not find (e.g. a tracefs event id). */
			log = libbpf_log_take();
			throw_errno_detail(env, err, log, "%s: bpf_program__attach", subject);
			goto out;
		}
	}
	lh = calloc(1, sizeof(*lh));
	if (!lh) {
		bpf_link__destroy(link);
		throw_errno(env, ENOMEM, "%s: attach", subject);
		goto out;
	}
	lh->link = link;
	lh->name = subject;
	subject = NULL;
	handle = new_handle(env, HANDLE_LINK, lh, finalize_link);
	if (!handle)
		finalize_link(env, lh, NULL);
out:
	free(log);
	free(subject);
	free(cgroup);
	free(name);
	return handle;
}

static napi_value object_map(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct obj_state *st = open_state(env, info, 1, argv);
	struct bpf_map *map;
	char *name;

	if (!st || !arg_string(env, argv[0], "map", &name))
		return NULL;
	map = bpf_object__find_map_by_name(st->obj, name);
	if (!map) {
		throw_plain(env, ENOENT, "%s: no map named '%s'", st->name, name);
		free(name);
		return NULL;
	}
	free(name);
	return new_map_handle(env, st, map);
}

static napi_value object_program_stats(napi_env env, napi_callback_info info)
{
	struct obj_state *st = open_state(env, info, 0, NULL);
	struct bpf_prog_info pinfo;
	struct bpf_program *prog;
	napi_value list, item;
	uint32_t i = 0, len;
	int fd, err;

	if (!st)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &list), NULL);
	bpf_object__for_each_program(prog, st->obj) {
		fd = bpf_program__fd(prog);
		if (fd < 0)
			continue;
		memset(&pinfo, 0, sizeof(pinfo));
		len = sizeof(pinfo);
		err = bpf_obj_get_info_by_fd(fd, &pinfo, &len);
		if (err) {
			throw_errno(env, err, "%s: prog '%s': bpf_obj_get_info_by_fd", st->name,
				    bpf_program__name(prog));
			return NULL;
		}
		NAPI_CALL(env, napi_create_object(env, &item), NULL);
		if (!set_prop(env, item, "name", make_string(env, bpf_program__name(prog))) ||
		    !set_prop(env, item, "id", make_u32(env, pinfo.id)) ||
		    !set_prop(env, item, "runTimeNs", make_bigint(env, pinfo.run_time_ns)) ||
		    !set_prop(env, item, "runCount", make_bigint(env, pinfo.run_cnt)))
			return NULL;
		NAPI_CALL(env, napi_set_element(env, list, i++, item), NULL);
	}
	return list;
}

static napi_value object_close(napi_env env, napi_callback_info info)
{
	struct obj_state *st = unwrap_handle(env, info, HANDLE_OBJECT, 0, NULL, NULL);

	if (st)
		obj_state_close(st);
	return NULL;
}

static struct link_handle *open_link(napi_env env, napi_callback_info info)
{
	struct link_handle *lh = unwrap_handle(env, info, HANDLE_LINK, 0, NULL, NULL);

	if (lh && !lh->link) {
		throw_plain(env, EBADF, "%s: the link is closed", lh->name);
		return NULL;
	}
	return lh;
}

static napi_value link_read_iter(napi_env env, napi_callback_info info)
{
	struct link_handle *lh = open_link(env, info);
	size_t len = 0, cap = 4096;
	char *buf, *bigger;
	napi_value result = NULL;
	ssize_t n;
	int fd, err;

	if (!lh)
		return NULL;
	fd = bpf_iter_create(bpf_link__fd(lh->link));
	if (fd < 0) {
		throw_errno(env, errno, "%s: bpf_iter_create", lh->name);
		return NULL;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		throw_errno(env, ENOMEM, "%s: readIter", lh->name);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				err = ENOMEM;
				goto fail;
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (napi_create_buffer_copy(env, len, buf, NULL, &result) != napi_ok)
		throw_napi_failure(env, napi_generic_failure, "napi_create_buffer_copy");
	free(buf);
	return result;
fail:
	close(fd);
	free(buf);
	throw_errno(env, err, "%s: read iterator", lh->name);
	return NULL;
}

static napi_value link_close(napi_env env, napi_callback_info info)
{
	struct link_handle *lh = unwrap_handle(env, info, HANDLE_LINK, 0, NULL, NULL);

	if (lh && lh->link) {
		bpf_link__destroy(lh->link);
		lh->link = NULL;
	}
	return NULL;
}

static napi_value libbpf_version(napi_env env, napi_callback_info info)
{
	char text[32];

	(void)info;
	snprintf(text, sizeof(text), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	return make_string(env, text);
}

static napi_value set_libbpf_debug(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	bool enabled;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_bool(env, argv[0], "enabled", &enabled))
		return NULL;
	libbpf_log_set_debug(enabled);
	return NULL;
}

#define METHOD(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL }

bool init_bpf_object(napi_env env, napi_value exports)
{
	static const napi_property_descriptor object_props[] = {
		METHOD("programs", object_programs),
		METHOD("maps", object_maps),
		METHOD("setAutoload", object_set_autoload),
		METHOD("setConst", object_set_const),
		METHOD("reuseMap", object_reuse_map),
		METHOD("load", object_load),
		METHOD("attach", object_attach),
		METHOD("map", object_map),
		METHOD("programStats", object_program_stats),
		METHOD("close", object_close),
	};
	static const napi_property_descriptor link_props[] = {
		METHOD("readIter", link_read_iter),
		METHOD("close", link_close),
	};

	return define_handle_class(env, HANDLE_OBJECT, "NativeObject", object_props,
				   sizeof(object_props) / sizeof(object_props[0])) &&
	       define_handle_class(env, HANDLE_LINK, "NativeLink", link_props,
				   sizeof(link_props) / sizeof(link_props[0])) &&
	       export_function(env, exports, "openObject", open_object) &&
	       export_function(env, exports, "libbpfVersion", libbpf_version) &&
	       export_function(env, exports, "setLibbpfDebug", set_libbpf_debug);
}
