// SPDX-License-Identifier: GPL-2.0
/*
 * NativeRingBuffer: the one BPF_MAP_TYPE_RINGBUF map all tuners post to.
 * libbpf's epoll fd is watched by a uv_poll_t on Node's own loop, so events
 * arrive as soon as the loop is free, with no timer and no extra thread.
 *
 * While open, the handle keeps itself alive (like a listening socket): the
 * callback must not be collected while the kernel can still produce samples.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "addon.h"

/*
 * Samples handed to one onSamples call. A producer faster than us would
 * otherwise keep ring_buffer__consume looping and starve the loop; the rest
 * stays in the ring and the (level-triggered) poll fires again.
 */
#define MAX_BATCH 4096
#define BATCH_FULL (-E2BIG)

struct rb_handle {
	napi_env env;
	struct ring_buffer *rb;
	int map_fd;
	uv_poll_t *poll; /* freed by its close callback, which may run after us */
	napi_ref callback;
	napi_ref self;
	napi_async_context async;
	bool closed;
	bool in_callback;
	bool cleanup_hook;
	/* Filled by the sample callback during one consume. */
	napi_value batch;
	uint32_t batch_len;
	bool batch_failed;
};

static int on_sample(void *ctx, void *data, size_t size)
{
	struct rb_handle *h = ctx;
	napi_value buf;

	if (napi_create_buffer_copy(h->env, size, data, NULL, &buf) != napi_ok ||
	    napi_set_element(h->env, h->batch, h->batch_len, buf) != napi_ok) {
		/* libbpf has already advanced past this sample: it is lost either way. */
		h->batch_failed = true;
		return -ENOMEM;
	}
	if (++h->batch_len >= MAX_BATCH)
		return BATCH_FULL;
	return 0;
}

static void free_poll(uv_handle_t *poll)
{
	free(poll);
}

/* Stops the kernel side; safe from a finalizer or env cleanup (no JS). */
static void release_native(struct rb_handle *h)
{
	if (h->poll) {
		uv_poll_stop(h->poll);
		h->poll->data = NULL;
		uv_close((uv_handle_t *)h->poll, free_poll);
		h->poll = NULL;
	}
	if (h->rb) {
		ring_buffer__free(h->rb);
		h->rb = NULL;
	}
	if (h->map_fd >= 0) {
		close(h->map_fd);
		h->map_fd = -1;
	}
	h->closed = true;
}

static void env_cleanup(void *arg)
{
	struct rb_handle *h = arg;

	h->cleanup_hook = false;
	release_native(h);
}

/* Drops what close() keeps for JS: the callback, the async context and the self-reference. */
static void release_js(struct rb_handle *h)
{
	if (h->cleanup_hook) {
		napi_remove_env_cleanup_hook(h->env, env_cleanup, h);
		h->cleanup_hook = false;
	}
	if (h->callback) {
		napi_delete_reference(h->env, h->callback);
		h->callback = NULL;
	}
	if (h->async) {
		napi_async_destroy(h->env, h->async);
		h->async = NULL;
	}
	if (h->self) {
		napi_delete_reference(h->env, h->self);
		h->self = NULL;
	}
}

static void report_exception(napi_env env, const char *what)
{
	napi_value exception, text;
	napi_valuetype t;
	char buf[4096] = "";
	bool has_stack = false;
	size_t len;

	if (napi_get_and_clear_last_exception(env, &exception) != napi_ok)
		return;
	/* The stack says where; it already starts with the message. */
	if (napi_typeof(env, exception, &t) == napi_ok && t == napi_object &&
	    napi_has_named_property(env, exception, "stack", &has_stack) == napi_ok && has_stack &&
	    napi_get_named_property(env, exception, "stack", &text) == napi_ok &&
	    napi_typeof(env, text, &t) == napi_ok && t == napi_string)
		exception = text;
	if (napi_coerce_to_string(env, exception, &text) == napi_ok)
		napi_get_value_string_utf8(env, text, buf, sizeof(buf), &len);
	/* Printed (not rethrown) so one tuner's bug cannot take the daemon down. */
	fprintf(stderr, "bpftune: %s: %s\n", what, buf);
}

static void deliver(struct rb_handle *h)
{
	napi_env env = h->env;
	napi_handle_scope scope;
	napi_value self, fn, result;
	bool pending = false;
	int err;

	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	if (napi_create_array(env, &h->batch) != napi_ok)
		goto out;
	h->batch_len = 0;
	h->batch_failed = false;
	err = ring_buffer__consume(h->rb);
	if (err < 0 && err != BATCH_FULL && !h->batch_failed)
		fprintf(stderr, "bpftune: ring buffer: ring_buffer__consume: %s\n", strerror(-err));
	if (h->batch_failed) {
		if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
			report_exception(env, "ring buffer: copying a sample failed");
		else
			fprintf(stderr, "bpftune: ring buffer: copying a sample failed; it was dropped\n");
	}
	if (!h->batch_len)
		goto out;
	if (napi_get_reference_value(env, h->self, &self) != napi_ok ||
	    napi_get_reference_value(env, h->callback, &fn) != napi_ok)
		goto out;
	/*
	 * make_callback (not call_function) because we are entering JS from
	 * the loop: it runs the microtask queue and nextTicks afterwards and
	 * keeps async_hooks context, so promises resolved in onSamples settle.
	 */
	h->in_callback = true;
	if (napi_make_callback(env, h->async, self, fn, 1, &h->batch, &result) != napi_ok ||
	    (napi_is_exception_pending(env, &pending) == napi_ok && pending))
		report_exception(env, "ring buffer callback threw");
	h->in_callback = false;
	/* onSamples may have called close(), which leaves the JS part to us. */
	if (h->closed)
		release_js(h);
out:
	h->batch = NULL;
	napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *poll, int status, int events)
{
	struct rb_handle *h = poll->data;

	(void)events;
	if (!h || h->closed)
		return;
	if (status < 0) {
		/* Not retried: an error here would repeat on every loop iteration. */
		fprintf(stderr, "bpftune: ring buffer: poll failed: %s; no further events\n",
			uv_strerror(status));
		uv_poll_stop(poll);
		return;
	}
	deliver(h);
}

static void finalize_rb(napi_env env, void *data, void *hint)
{
	struct rb_handle *h = data;

	(void)env;
	(void)hint;
	if (h->cleanup_hook)
		napi_remove_env_cleanup_hook(h->env, env_cleanup, h);
	release_native(h);
	free(h);
}

static napi_value rb_close(napi_env env, napi_callback_info info)
{
	struct rb_handle *h = unwrap_handle(env, info, HANDLE_RING_BUFFER, 0, NULL, NULL);

	if (!h || h->closed)
		return NULL;
	release_native(h);
	if (!h->in_callback)
		release_js(h);
	return NULL;
}

static napi_value rb_fd(napi_env env, napi_callback_info info)
{
	struct rb_handle *h = unwrap_handle(env, info, HANDLE_RING_BUFFER, 0, NULL, NULL);

	if (!h)
		return NULL;
	return make_i32(env, h->map_fd);
}

static napi_value create_ring_buffer(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL }, handle, name;
	struct uv_loop_s *loop;
	struct rb_handle *h;
	uint64_t raised;
	int64_t size;
	int err;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_int64(env, argv[0], "sizeBytes", &size) ||
	    !arg_function(env, argv[1], "onSamples"))
		return NULL;
	if (size <= 0 || size > UINT32_MAX) {
		throw_plain(env, EINVAL, "ring buffer: size %lld is out of range", (long long)size);
		return NULL;
	}
	NAPI_CALL(env, napi_get_uv_event_loop(env, &loop), NULL);
	h = calloc(1, sizeof(*h));
	if (!h) {
		throw_errno(env, ENOMEM, "ring buffer");
		return NULL;
	}
	h->env = env;
	raised = caps_raise(CAP_BIT(CAP_BPF));
	h->map_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "ring_buffer", 0, 0, (uint32_t)size, NULL);
	caps_restore(raised);
	if (h->map_fd < 0) {
		err = h->map_fd;
		free(h);
		throw_errno(env, err, "ring buffer: bpf_map_create (%lld bytes)", (long long)size);
		return NULL;
	}
	h->rb = ring_buffer__new(h->map_fd, on_sample, h, NULL);
	if (!h->rb) {
		err = errno;
		release_native(h);
		free(h);
		throw_errno(env, err, "ring buffer: ring_buffer__new");
		return NULL;
	}
	h->poll = calloc(1, sizeof(*h->poll));
	if (!h->poll) {
		release_native(h);
		free(h);
		throw_errno(env, ENOMEM, "ring buffer");
		return NULL;
	}
	err = uv_poll_init(loop, h->poll, ring_buffer__epoll_fd(h->rb));
	if (err) {
		free(h->poll);
		h->poll = NULL;
		release_native(h);
		free(h);
		throw_plain(env, 0, "ring buffer: uv_poll_init: %s", uv_strerror(err));
		return NULL;
	}
	h->poll->data = h;
	handle = new_handle(env, HANDLE_RING_BUFFER, h, finalize_rb);
	if (!handle) {
		release_native(h);
		free(h);
		return NULL;
	}
	/* From here on the finalizer owns h. */
	if (napi_create_reference(env, handle, 1, &h->self) != napi_ok ||
	    napi_create_reference(env, argv[1], 1, &h->callback) != napi_ok ||
	    napi_create_string_utf8(env, "bpftune:ringBuffer", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_async_init(env, handle, name, &h->async) != napi_ok) {
		release_native(h);
		release_js(h);
		throw_napi_failure(env, napi_generic_failure, "createRingBuffer");
		return NULL;
	}
	/* A worker thread's loop must not be closed with our poll still open. */
	if (napi_add_env_cleanup_hook(env, env_cleanup, h) == napi_ok)
		h->cleanup_hook = true;
	err = uv_poll_start(h->poll, UV_READABLE, on_readable);
	if (err) {
		release_native(h);
		release_js(h);
		throw_plain(env, 0, "ring buffer: uv_poll_start: %s", uv_strerror(err));
		return NULL;
	}
	return handle;
}

bool init_ring_buffer(napi_env env, napi_value exports)
{
	static const napi_property_descriptor props[] = {
		{ "fd", NULL, NULL, rb_fd, NULL, NULL, napi_enumerable, NULL },
		{ "close", NULL, rb_close, NULL, NULL, NULL, napi_default_method, NULL },
	};

	return define_handle_class(env, HANDLE_RING_BUFFER, "NativeRingBuffer", props,
				   sizeof(props) / sizeof(props[0])) &&
	       export_function(env, exports, "createRingBuffer", create_ring_buffer);
}
