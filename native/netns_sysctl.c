// SPDX-License-Identifier: GPL-2.0
/*
 * netnsId, readSysctl and writeSysctl. /proc/sys/net resolves to the network
 * namespace of the calling *thread*, so the work runs on a libuv pool thread
 * that enters the target namespace with setns() and leaves it again before
 * taking other work. The JS thread never changes namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "addon.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Sysctl values are short; this bounds a read of something unexpected. */
#define MAX_SYSCTL_TEXT (1024 * 1024)

enum ns_op { OP_NETNS_ID, OP_READ, OP_WRITE };

struct ns_work {
	napi_async_work work;
	napi_deferred deferred;
	enum ns_op op;
	char *ns_path; /* NULL: the daemon's own namespace */
	uint64_t expected_inum;
	char *name;
	char *value;
	/* Results, or err and the failed call when err != 0. */
	int err;
	char call[128];
	char *text;
	uint64_t cookie;
	uint64_t inum;
};

static void fail(struct ns_work *w, int err, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void fail(struct ns_work *w, int err, const char *fmt, ...)
{
	va_list ap;

	w->err = err ? err : EIO;
	va_start(ap, fmt);
	vsnprintf(w->call, sizeof(w->call), fmt, ap);
	va_end(ap);
}

static void do_netns_id(struct ns_work *w)
{
	socklen_t len = sizeof(w->cookie);
	int fd;

	/* Any socket reports the cookie of the namespace it was created in. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(w, errno, "socket");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &w->cookie, &len) < 0)
		fail(w, errno, "getsockopt SO_NETNS_COOKIE");
	close(fd);
}

static void do_read(struct ns_work *w, const char *path)
{
	size_t len = 0, cap = 256;
	char *buf = NULL, *bigger;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(w, errno, "open");
		return;
	}
	for (;;) {
		if (len + 1 >= cap || !buf) {
			if (buf)
				cap *= 2;
			if (cap > MAX_SYSCTL_TEXT) {
				fail(w, EFBIG, "read");
				goto out;
			}
			bigger = realloc(buf, cap);
			if (!bigger) {
				fail(w, ENOMEM, "read");
				goto out;
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(w, errno, "read");
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	buf[len] = '\0';
	w->text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
}

static void do_write(struct ns_work *w, const char *path)
{
	size_t len = strlen(w->value);
	char *line;
	ssize_t n;
	int fd;

	line = malloc(len + 2);
	if (!line) {
		fail(w, ENOMEM, "write");
		return;
	}
	memcpy(line, w->value, len);
	line[len++] = '\n';
	line[len] = '\0';
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(w, errno, "open");
		free(line);
		return;
	}
	/* proc_sys parses one write as the whole value; a split write would not parse. */
	do
		n = write(fd, line, len);
	while (n < 0 && errno == EINTR);
	/*
	 * File permissions let uid 0 write every net sysctl, but a few handlers
	 * also check a capability: static-key switches (proc_do_static_key, e.g.
	 * net.core.high_order_alloc_disable) want CAP_SYS_ADMIN. The effective set
	 * is empty at rest, so such a write is refused once and retried with
	 * CAP_SYS_ADMIN raised on this thread for that write only.
	 */
	if (n < 0 && errno == EPERM) {
		uint64_t raised = caps_raise(CAP_BIT(CAP_SYS_ADMIN));

		do
			n = write(fd, line, len);
		while (n < 0 && errno == EINTR);
		caps_restore(raised);
	}
	if (n < 0)
		fail(w, errno, "write");
	else if ((size_t)n != len)
		fail(w, EIO, "write (short: %zd of %zu bytes)", n, len);
	if (close(fd) < 0 && !w->err)
		fail(w, errno, "close");
	free(line);
}

static void do_op(struct ns_work *w)
{
	char *path;

	if (w->op == OP_NETNS_ID) {
		do_netns_id(w);
		return;
	}
	if (asprintf(&path, "/proc/sys/%s", w->name) < 0) {
		fail(w, ENOMEM, "%s", w->op == OP_READ ? "read" : "write");
		return;
	}
	if (w->op == OP_READ)
		do_read(w, path);
	else
		do_write(w, path);
	free(path);
}

static void run_op(void *arg)
{
	do_op(arg);
}

static void execute(napi_env env, void *data)
{
	struct ns_work *w = data;
	char failed[sizeof(w->call)];
	int err;

	(void)env;
	/* A sysctl write needs no capability but for the few do_write() retries with one. */
	err = run_in_netns(w->ns_path, w->expected_inum, &w->inum, run_op, w, 0, failed,
			   sizeof(failed));
	if (err)
		fail(w, err, "%s", failed);
}

static void complete(napi_env env, napi_status status, void *data)
{
	struct ns_work *w = data;
	napi_value result = NULL, error;
	const char *ns = w->ns_path;

	if (status == napi_cancelled)
		fail(w, ECANCELED, "cancelled");
	if (w->err) {
		if (w->op == OP_NETNS_ID)
			error = errno_error(env, w->err, NULL, "netns %s: %s", ns, w->call);
		else
			error = errno_error(env, w->err, NULL, "sysctl %s%s%s: %s", w->name,
					    ns ? " in " : "", ns ? ns : "", w->call);
		if (error)
			napi_reject_deferred(env, w->deferred, error);
		goto out;
	}
	switch (w->op) {
	case OP_NETNS_ID:
		if (napi_create_object(env, &result) == napi_ok &&
		    (!set_prop(env, result, "cookie", make_bigint(env, w->cookie)) ||
		     !set_prop(env, result, "inum", make_double(env, (double)w->inum))))
			result = NULL;
		break;
	case OP_READ:
		result = make_string(env, w->text);
		break;
	case OP_WRITE:
		result = make_undefined(env);
		break;
	}
	if (result) {
		napi_resolve_deferred(env, w->deferred, result);
	} else {
		/* Settle the promise with whatever went wrong rather than leave it pending. */
		if (napi_get_and_clear_last_exception(env, &error) == napi_ok)
			napi_reject_deferred(env, w->deferred, error);
	}
out:
	napi_delete_async_work(env, w->work);
	free(w->ns_path);
	free(w->name);
	free(w->value);
	free(w->text);
	free(w);
}

static bool valid_sysctl_name(const char *name)
{
	return *name && *name != '/' && !strstr(name, "..");
}

static napi_value queue(napi_env env, struct ns_work *w)
{
	napi_value promise, name;

	if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
	    napi_create_string_utf8(env, "bpftune:netns", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_async_work(env, NULL, name, execute, complete, w, &w->work) != napi_ok) {
		/* A created promise can only be settled; nothing else holds it. */
		free(w->ns_path);
		free(w->name);
		free(w->value);
		free(w);
		throw_napi_failure(env, napi_generic_failure, "napi_create_async_work");
		return NULL;
	}
	if (napi_queue_async_work(env, w->work) != napi_ok) {
		napi_delete_async_work(env, w->work);
		free(w->ns_path);
		free(w->name);
		free(w->value);
		free(w);
		throw_napi_failure(env, napi_generic_failure, "napi_queue_async_work");
		return NULL;
	}
	return promise;
}

static napi_value netns_id(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1] = { NULL };
	struct ns_work *w;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	w = calloc(1, sizeof(*w));
	if (!w) {
		throw_errno(env, ENOMEM, "netnsId");
		return NULL;
	}
	w->op = OP_NETNS_ID;
	if (!arg_string(env, argv[0], "nsPath", &w->ns_path)) {
		free(w);
		return NULL;
	}
	return queue(env, w);
}

static napi_value sysctl_call(napi_env env, napi_callback_info info, enum ns_op op)
{
	size_t argc = 4;
	napi_value argv[4] = { NULL, NULL, NULL, NULL };
	struct ns_work *w;
	int64_t inum;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	w = calloc(1, sizeof(*w));
	if (!w) {
		throw_errno(env, ENOMEM, "sysctl");
		return NULL;
	}
	w->op = op;
	if (!arg_optional_string(env, argv[0], "nsPath", &w->ns_path) ||
	    !arg_int64(env, argv[1], "expectedInum", &inum) ||
	    !arg_string(env, argv[2], "name", &w->name) ||
	    (op == OP_WRITE && !arg_string(env, argv[3], "value", &w->value)))
		goto bad;
	if (inum < 0) {
		throw_plain(env, EINVAL, "expectedInum must not be negative");
		goto bad;
	}
	w->expected_inum = (uint64_t)inum;
	/* Only names under /proc/sys, so no caller can reach other files through us. */
	if (!valid_sysctl_name(w->name)) {
		throw_plain(env, EINVAL, "sysctl %s: invalid name (must be relative to /proc/sys, "
				 "without \"..\")", w->name);
		goto bad;
	}
	return queue(env, w);
bad:
	free(w->ns_path);
	free(w->name);
	free(w->value);
	free(w);
	return NULL;
}

static napi_value read_sysctl(napi_env env, napi_callback_info info)
{
	return sysctl_call(env, info, OP_READ);
}

static napi_value write_sysctl(napi_env env, napi_callback_info info)
{
	return sysctl_call(env, info, OP_WRITE);
}

bool init_netns_sysctl(napi_env env, napi_value exports)
{
	return export_function(env, exports, "netnsId", netns_id) &&
	       export_function(env, exports, "readSysctl", read_sysctl) &&
	       export_function(env, exports, "writeSysctl", write_sysctl);
}
