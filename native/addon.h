/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the addon's files: JS error construction, argument checking and
 * the wrapped handle classes. The JS API these implement is specified in
 * src/core/native.ts.
 */
#ifndef BPFTUNE_ADDON_H
#define BPFTUNE_ADDON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/capability.h>
#include <node_api.h>

#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))

/*
 * On a failed N-API call an exception may or may not be pending; make sure
 * one is, so the JS caller never sees a silent undefined.
 */
void throw_napi_failure(napi_env env, napi_status status, const char *what);

#define NAPI_CALL(env, call, ret)                                  \
	do {                                                       \
		napi_status status__ = (call);                     \
		if (status__ != napi_ok) {                         \
			throw_napi_failure((env), status__, #call); \
			return ret;                                \
		}                                                  \
	} while (0)

/*
 * Errors: "<subject>: <call>: <strerror(err)>", plus detail (e.g. libbpf's
 * log) on following lines; `code` is the errno name and `errno` the number.
 * err may be a negative libbpf return value.
 */
napi_value errno_error(napi_env env, int err, const char *detail, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
void throw_errno(napi_env env, int err, const char *fmt, ...) PRINTF_LIKE(3, 4);
void throw_errno_detail(napi_env env, int err, const char *detail, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
/* For failures that are not a failed call: message as given, code from err. */
void throw_plain(napi_env env, int err, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* A wrong argument type: TypeError with code ERR_INVALID_ARG_TYPE. */
void throw_type(napi_env env, const char *fmt, ...) PRINTF_LIKE(2, 3);

/*
 * Argument readers. Each returns false with a JS exception pending when the
 * value is unusable. Strings come back malloc'd and NUL-free.
 */
bool arg_string(napi_env env, napi_value value, const char *what, char **out);
bool arg_optional_string(napi_env env, napi_value value, const char *what, char **out);
bool arg_buffer(napi_env env, napi_value value, const char *what, void **data, size_t *len);
bool arg_int64(napi_env env, napi_value value, const char *what, int64_t *out);
bool arg_bool(napi_env env, napi_value value, const char *what, bool *out);
bool arg_function(napi_env env, napi_value value, const char *what);
bool arg_bigint_u64(napi_env env, napi_value value, const char *what, uint64_t *out);

napi_value make_string(napi_env env, const char *s);
napi_value make_u32(napi_env env, uint32_t v);
napi_value make_i32(napi_env env, int32_t v);
napi_value make_double(napi_env env, double v);
napi_value make_bool(napi_env env, bool v);
napi_value make_bigint(napi_env env, uint64_t v);
napi_value make_undefined(napi_env env);
/* Sets obj[key] = value; false with an exception pending on failure. */
bool set_prop(napi_env env, napi_value obj, const char *key, napi_value value);
/* The same for a read-only (but enumerable) property of a handle. */
bool set_readonly(napi_env env, napi_value obj, const char *key, napi_value value);

/*
 * Handles are instances of internal classes: the JS side can neither
 * construct them nor pass one kind where another is expected (type tags).
 */
enum handle_kind {
	HANDLE_OBJECT,
	HANDLE_MAP,
	HANDLE_LINK,
	HANDLE_RING_BUFFER,
	HANDLE_KINDS,
};

bool define_handle_class(napi_env env, enum handle_kind kind, const char *name,
			 const napi_property_descriptor *props, size_t nprops);
/* Wraps native in a new instance; fin runs when the instance is collected. */
napi_value new_handle(napi_env env, enum handle_kind kind, void *native, napi_finalize fin);
/*
 * Reads `this` and up to *argc arguments (missing ones are undefined) and
 * returns the native pointer, or NULL with a TypeError pending.
 */
void *unwrap_handle(napi_env env, napi_callback_info info, enum handle_kind kind,
		    size_t argc, napi_value *argv, napi_value *this_out);

/* Per-file registration, called from module init. */
bool init_bpf_object(napi_env env, napi_value exports);
bool init_bpf_map(napi_env env);
bool init_ring_buffer(napi_env env, napi_value exports);
/*
 * Runs op(arg) on this thread inside the network namespace at ns_path (NULL:
 * the thread's own), then returns the thread to its own namespace. Returns 0
 * or an errno, with `failed` naming the call that failed. *inum (if given)
 * receives the namespace's inode; a non-zero expected_inum that differs
 * fails with ESTALE. op_caps (CAP_BIT()s) are raised around op only.
 */
int run_in_netns(const char *ns_path, uint64_t expected_inum, uint64_t *inum,
		 void (*op)(void *arg), void *arg, uint64_t op_caps, char *failed,
		 size_t failed_len);

/*
 * Capabilities (capabilities.c). The effective set is empty at rest on every
 * thread; caps_raise() adds the permitted ones of `want` to the calling
 * thread's effective set and returns what caps_restore() needs to undo it.
 * Keep the raise around the one call that needs it.
 */
#define CAP_BIT(cap) (1ULL << (cap))
uint64_t caps_raise(uint64_t want);
void caps_restore(uint64_t previous);
bool init_capabilities(napi_env env, napi_value exports);
bool init_netns_enter(napi_env env, napi_value exports);
bool init_netns_sysctl(napi_env env, napi_value exports);
bool init_system(napi_env env, napi_value exports);
bool init_netns_net(napi_env env, napi_value exports);
bool init_unix_datagram(napi_env env, napi_value exports);
bool export_function(napi_env env, napi_value exports, const char *name, napi_callback cb);

/* libbpf output capture (libbpf_log.c). */
void libbpf_log_install(void);
void libbpf_log_set_debug(bool enabled);
/* Forgets what was captured: called at the start of open, load and attach. */
void libbpf_log_reset(void);
/* Returns a malloc'd copy of the captured text ("" if none), or NULL. */
char *libbpf_log_take(void);

#endif
