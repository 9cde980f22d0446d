// SPDX-License-Identifier: GPL-2.0
/*
 * Module init, JS errors, argument checking and the internal handle classes
 * shared by the rest of the addon.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "addon.h"

/* Constructors of the handle classes, per environment (worker threads each load the addon). */
struct addon_data {
	napi_ref ctors[HANDLE_KINDS];
};

/*
 * Type tags stop a method of one class being applied to an instance of
 * another (or to a plain object), which would hand it the wrong pointer.
 */
static const napi_type_tag handle_tags[HANDLE_KINDS] = {
	[HANDLE_OBJECT] = { 0x62706674756e6501ULL, 0x8f3a51c2d94e7b10ULL },
	[HANDLE_MAP] = { 0x62706674756e6502ULL, 0x1c7e93a0b5d24f68ULL },
	[HANDLE_LINK] = { 0x62706674756e6503ULL, 0xa2d56e18c07f394bULL },
	[HANDLE_RING_BUFFER] = { 0x62706674756e6504ULL, 0x5b0f8c47e1a26d93ULL },
};

/* Only new_handle() can produce this external, so JS cannot construct handles. */
static int construct_token;

static PRINTF_LIKE(1, 0) char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

static void err_text(int err, char *buf, size_t len)
{
	/* libbpf's own codes (4000+) mean nothing to strerror(). */
	if (err >= 4000 && libbpf_strerror(err, buf, len) == 0)
		return;
	snprintf(buf, len, "%s", strerror(err));
}

static napi_value build_error(napi_env env, bool type_error, int err, const char *code,
			      const char *message)
{
	napi_value msg, error, v;

	if (napi_create_string_utf8(env, message ? message : "out of memory", NAPI_AUTO_LENGTH,
				    &msg) != napi_ok)
		return NULL;
	if ((type_error ? napi_create_type_error(env, NULL, msg, &error)
			: napi_create_error(env, NULL, msg, &error)) != napi_ok)
		return NULL;
	if (!code && err > 0)
		code = strerrorname_np(err);
	if (code && napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v) == napi_ok)
		napi_set_named_property(env, error, "code", v);
	if (err > 0 && napi_create_int32(env, err, &v) == napi_ok)
		napi_set_named_property(env, error, "errno", v);
	return error;
}

static PRINTF_LIKE(4, 0) napi_value verrno_error(napi_env env, int err, const char *detail,
						   const char *fmt, va_list ap)
{
	char text[256];
	char *subject, *message = NULL;
	napi_value error;

	if (err < 0)
		err = -err;
	if (err == 0)
		err = EIO;
	err_text(err, text, sizeof(text));
	subject = vformat(fmt, ap);
	if (subject && asprintf(&message, "%s: %s%s%s", subject, text, detail && *detail ? "\n" : "",
				detail ? detail : "") < 0)
		message = NULL;
	error = build_error(env, false, err, NULL, message);
	free(message);
	free(subject);
	return error;
}

napi_value errno_error(napi_env env, int err, const char *detail, const char *fmt, ...)
{
	va_list ap;
	napi_value error;

	va_start(ap, fmt);
	error = verrno_error(env, err, detail, fmt, ap);
	va_end(ap);
	return error;
}

void throw_errno(napi_env env, int err, const char *fmt, ...)
{
	va_list ap;
	napi_value error;

	va_start(ap, fmt);
	error = verrno_error(env, err, NULL, fmt, ap);
	va_end(ap);
	if (error)
		napi_throw(env, error);
}

void throw_errno_detail(napi_env env, int err, const char *detail, const char *fmt, ...)
{
	va_list ap;
	napi_value error;

	va_start(ap, fmt);
	error = verrno_error(env, err, detail, fmt, ap);
	va_end(ap);
	if (error)
		napi_throw(env, error);
}

void throw_plain(napi_env env, int err, const char *fmt, ...)
{
	va_list ap;
	char *message;
	napi_value error;

	va_start(ap, fmt);
	message = vformat(fmt, ap);
	va_end(ap);
	error = build_error(env, false, err < 0 ? -err : err, NULL, message);
	free(message);
	if (error)
		napi_throw(env, error);
}

void throw_type(napi_env env, const char *fmt, ...)
{
	va_list ap;
	char *message;
	napi_value error;

	va_start(ap, fmt);
	message = vformat(fmt, ap);
	va_end(ap);
	error = build_error(env, true, 0, "ERR_INVALID_ARG_TYPE", message);
	free(message);
	if (error)
		napi_throw(env, error);
}

void throw_napi_failure(napi_env env, napi_status status, const char *what)
{
	const napi_extended_error_info *info = NULL;
	bool pending = false;

	if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
		return;
	napi_get_last_error_info(env, &info);
	throw_plain(env, 0, "bpftune_native: %s failed: %s (status %d)", what,
		    info && info->error_message ? info->error_message : "N-API error", (int)status);
}

static bool is_type(napi_env env, napi_value value, napi_valuetype want)
{
	napi_valuetype t;

	return napi_typeof(env, value, &t) == napi_ok && t == want;
}

bool arg_string(napi_env env, napi_value value, const char *what, char **out)
{
	size_t len;
	char *s;

	if (!is_type(env, value, napi_string)) {
		throw_type(env, "%s must be a string", what);
		return false;
	}
	NAPI_CALL(env, napi_get_value_string_utf8(env, value, NULL, 0, &len), false);
	s = malloc(len + 1);
	if (!s) {
		throw_errno(env, ENOMEM, "%s", what);
		return false;
	}
	if (napi_get_value_string_utf8(env, value, s, len + 1, &len) != napi_ok) {
		free(s);
		throw_napi_failure(env, napi_generic_failure, "napi_get_value_string_utf8");
		return false;
	}
	/* An embedded NUL would silently shorten a path or name. */
	if (strlen(s) != len) {
		free(s);
		throw_type(env, "%s must not contain NUL characters", what);
		return false;
	}
	*out = s;
	return true;
}

bool arg_optional_string(napi_env env, napi_value value, const char *what, char **out)
{
	if (is_type(env, value, napi_null) || is_type(env, value, napi_undefined)) {
		*out = NULL;
		return true;
	}
	return arg_string(env, value, what, out);
}

bool arg_buffer(napi_env env, napi_value value, const char *what, void **data, size_t *len)
{
	bool ok = false;

	if (napi_is_buffer(env, value, &ok) != napi_ok || !ok) {
		throw_type(env, "%s must be a Buffer", what);
		return false;
	}
	NAPI_CALL(env, napi_get_buffer_info(env, value, data, len), false);
	return true;
}

bool arg_int64(napi_env env, napi_value value, const char *what, int64_t *out)
{
	double d;

	if (!is_type(env, value, napi_number)) {
		throw_type(env, "%s must be a number", what);
		return false;
	}
	NAPI_CALL(env, napi_get_value_double(env, value, &d), false);
	if (!isfinite(d) || trunc(d) != d || fabs(d) > 9007199254740991.0) {
		throw_plain(env, EINVAL, "%s must be a safe integer", what);
		return false;
	}
	*out = (int64_t)d;
	return true;
}

bool arg_bool(napi_env env, napi_value value, const char *what, bool *out)
{
	if (!is_type(env, value, napi_boolean)) {
		throw_type(env, "%s must be a boolean", what);
		return false;
	}
	NAPI_CALL(env, napi_get_value_bool(env, value, out), false);
	return true;
}

bool arg_function(napi_env env, napi_value value, const char *what)
{
	if (!is_type(env, value, napi_function)) {
		throw_type(env, "%s must be a function", what);
		return false;
	}
	return true;
}

bool arg_bigint_u64(napi_env env, napi_value value, const char *what, uint64_t *out)
{
	bool lossless = false;
	uint64_t v = 0;

	if (!is_type(env, value, napi_bigint)) {
		throw_type(env, "%s must be a bigint", what);
		return false;
	}
	/* Not lossless for negative values as well as for ones past 64 bits. */
	NAPI_CALL(env, napi_get_value_bigint_uint64(env, value, &v, &lossless), false);
	if (!lossless) {
		throw_plain(env, ERANGE, "%s must be a bigint in [0, 2^64)", what);
		return false;
	}
	*out = v;
	return true;
}

napi_value make_string(napi_env env, const char *s)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &v), NULL);
	return v;
}

napi_value make_u32(napi_env env, uint32_t n)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_create_uint32(env, n, &v), NULL);
	return v;
}

napi_value make_i32(napi_env env, int32_t n)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_create_int32(env, n, &v), NULL);
	return v;
}

napi_value make_double(napi_env env, double n)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_create_double(env, n, &v), NULL);
	return v;
}

napi_value make_bool(napi_env env, bool b)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_get_boolean(env, b, &v), NULL);
	return v;
}

napi_value make_bigint(napi_env env, uint64_t n)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_create_bigint_uint64(env, n, &v), NULL);
	return v;
}

napi_value make_undefined(napi_env env)
{
	napi_value v = NULL;

	NAPI_CALL(env, napi_get_undefined(env, &v), NULL);
	return v;
}

bool set_prop(napi_env env, napi_value obj, const char *key, napi_value value)
{
	if (!value)
		return false;
	NAPI_CALL(env, napi_set_named_property(env, obj, key, value), false);
	return true;
}

bool set_readonly(napi_env env, napi_value obj, const char *key, napi_value value)
{
	napi_property_descriptor desc = { key, NULL, NULL, NULL, NULL, value, napi_enumerable, NULL };

	if (!value)
		return false;
	NAPI_CALL(env, napi_define_properties(env, obj, 1, &desc), false);
	return true;
}

static napi_value handle_constructor(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], self;
	void *token = NULL;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL), NULL);
	if (argc < 1 || !is_type(env, argv[0], napi_external) ||
	    napi_get_value_external(env, argv[0], &token) != napi_ok || token != &construct_token) {
		throw_type(env, "Illegal constructor: bpftune native handles are created by the addon");
		return NULL;
	}
	return self;
}

static struct addon_data *get_data(napi_env env)
{
	void *data = NULL;

	if (napi_get_instance_data(env, &data) != napi_ok)
		return NULL;
	return data;
}

bool define_handle_class(napi_env env, enum handle_kind kind, const char *name,
			 const napi_property_descriptor *props, size_t nprops)
{
	struct addon_data *data = get_data(env);
	napi_value ctor;

	NAPI_CALL(env, napi_define_class(env, name, NAPI_AUTO_LENGTH, handle_constructor, NULL,
					 nprops, props, &ctor), false);
	NAPI_CALL(env, napi_create_reference(env, ctor, 1, &data->ctors[kind]), false);
	return true;
}

napi_value new_handle(napi_env env, enum handle_kind kind, void *native, napi_finalize fin)
{
	struct addon_data *data = get_data(env);
	napi_value ctor, token, instance;

	NAPI_CALL(env, napi_get_reference_value(env, data->ctors[kind], &ctor), NULL);
	NAPI_CALL(env, napi_create_external(env, &construct_token, NULL, NULL, &token), NULL);
	NAPI_CALL(env, napi_new_instance(env, ctor, 1, &token, &instance), NULL);
	NAPI_CALL(env, napi_type_tag_object(env, instance, &handle_tags[kind]), NULL);
	NAPI_CALL(env, napi_wrap(env, instance, native, fin, NULL, NULL), NULL);
	return instance;
}

void *unwrap_handle(napi_env env, napi_callback_info info, enum handle_kind kind,
		    size_t argc, napi_value *argv, napi_value *this_out)
{
	size_t got = argc;
	napi_value self;
	bool tagged = false;
	void *native = NULL;

	NAPI_CALL(env, napi_get_cb_info(env, info, &got, argv, &self, NULL), NULL);
	if (!is_type(env, self, napi_object) ||
	    napi_check_object_type_tag(env, self, &handle_tags[kind], &tagged) != napi_ok || !tagged ||
	    napi_unwrap(env, self, &native) != napi_ok || !native) {
		throw_type(env, "Illegal invocation: receiver is not the expected bpftune native handle");
		return NULL;
	}
	if (this_out)
		*this_out = self;
	return native;
}

bool export_function(napi_env env, napi_value exports, const char *name, napi_callback cb)
{
	napi_value fn;

	NAPI_CALL(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn), false);
	NAPI_CALL(env, napi_set_named_property(env, exports, name, fn), false);
	return true;
}

static void free_addon_data(napi_env env, void *raw, void *hint)
{
	struct addon_data *data = raw;
	int i;

	(void)hint;
	for (i = 0; i < HANDLE_KINDS; i++)
		if (data->ctors[i])
			napi_delete_reference(env, data->ctors[i]);
	free(data);
}

static napi_value init(napi_env env, napi_value exports)
{
	struct addon_data *data = calloc(1, sizeof(*data));

	if (!data) {
		throw_errno(env, ENOMEM, "bpftune_native: init");
		return NULL;
	}
	if (napi_set_instance_data(env, data, free_addon_data, NULL) != napi_ok) {
		free(data);
		throw_napi_failure(env, napi_generic_failure, "napi_set_instance_data");
		return NULL;
	}
	libbpf_log_install();
	if (!init_bpf_object(env, exports) || !init_bpf_map(env) ||
	    !init_ring_buffer(env, exports) || !init_netns_sysctl(env, exports) ||
	    !init_system(env, exports) || !init_netns_net(env, exports) ||
	    !init_unix_datagram(env, exports) || !init_capabilities(env, exports) ||
	    !init_netns_enter(env, exports))
		return NULL;
	return exports;
}

/* node_api.h's registration macro defines exported functions without prototypes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
#pragma GCC diagnostic pop
