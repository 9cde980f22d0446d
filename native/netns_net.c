// SPDX-License-Identifier: GPL-2.0
/*
 * netlinkRequest and readProcNet: a netlink exchange, or a /proc/net file,
 * inside a network namespace. Both resolve to the namespace of the calling
 * *thread* (a netlink socket belongs to the namespace it is created in;
 * /proc/thread-self/net is the thread's), so the work runs on a libuv pool
 * thread that enters the namespace with setns() and leaves before taking
 * other work, as netns_sysctl.c does for /proc/sys.
 *
 * Message building and parsing stay in TypeScript; this file only moves
 * bytes: send one request, collect the replies up to the final ACK or DONE.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include "addon.h"

/* Bounds a reply: a neighbour dump of a big table is a few MiB at most. */
#define MAX_REPLY_BYTES (64 * 1024 * 1024)
#define MAX_PROC_NET_TEXT (16 * 1024 * 1024)
#define RECV_BUFFER_BYTES (64 * 1024)
/* A kernel that never answers must not hold a pool thread forever. */
#define RECV_TIMEOUT_SEC 5

enum net_op { OP_NETLINK, OP_PROC_NET };

struct net_work {
	napi_async_work work;
	napi_deferred deferred;
	enum net_op op;
	char *ns_path; /* NULL: the daemon's own namespace */
	uint64_t expected_inum;
	/* OP_NETLINK */
	int protocol;
	void *request;
	size_t request_len;
	uint16_t request_type;
	/* OP_PROC_NET */
	char *file;
	/* Results: replies packed back to back (OP_NETLINK) or text, or err. */
	char *reply;
	size_t reply_len;
	int err;
	char call[160];
};

static void fail(struct net_work *w, int err, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void fail(struct net_work *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (w->err)
		return;
	w->err = err ? err : EIO;
	va_start(ap, fmt);
	vsnprintf(w->call, sizeof(w->call), fmt, ap);
	va_end(ap);
}

static bool append(struct net_work *w, size_t *cap, const void *data, size_t len, size_t limit)
{
	char *bigger;
	size_t want;

	if (w->reply_len + len > limit) {
		fail(w, EFBIG, "reply larger than %zu bytes", limit);
		return false;
	}
	if (w->reply_len + len > *cap) {
		want = *cap ? *cap : 4096;
		while (want < w->reply_len + len)
			want *= 2;
		bigger = realloc(w->reply, want);
		if (!bigger) {
			fail(w, ENOMEM, "recv");
			return false;
		}
		w->reply = bigger;
		*cap = want;
	}
	memcpy(w->reply + w->reply_len, data, len);
	w->reply_len += len;
	return true;
}

/*
 * Handles one datagram; returns true when it held the message that ends the
 * exchange (an ACK, an error, or the end of a dump).
 */
static bool take_replies(struct net_work *w, size_t *cap, char *buf, size_t len, uint32_t seq,
			 uint32_t port)
{
	struct nlmsghdr *nlh;
	int remaining = (int)len;

	for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, remaining); nlh = NLMSG_NEXT(nlh, remaining)) {
		/* Another request's late answer (or a notification) is not ours. */
		if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid && nlh->nlmsg_pid != port))
			continue;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(nlh);

			if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				fail(w, EBADMSG, "truncated NLMSG_ERROR reply");
			else if (e->error)
				fail(w, -e->error, "kernel replied with an error");
			return true;
		}
		if (nlh->nlmsg_type == NLMSG_DONE) {
			int *status = NLMSG_DATA(nlh);

			if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*status)) && *status < 0)
				fail(w, -*status, "dump ended with an error");
			return true;
		}
		if (!append(w, cap, nlh, NLMSG_ALIGN(nlh->nlmsg_len), MAX_REPLY_BYTES))
			return true;
	}
	return false;
}

static void do_netlink(struct net_work *w)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct timeval timeout = { .tv_sec = RECV_TIMEOUT_SEC };
	struct nlmsghdr *req = w->request;
	socklen_t local_len = sizeof(local);
	size_t cap = 0;
	char *buf;
	ssize_t n;
	int fd;

	/* Only a dump ends with NLMSG_DONE; anything else must be acknowledged to end. */
	if (!(req->nlmsg_flags & NLM_F_DUMP))
		req->nlmsg_flags |= NLM_F_ACK;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, w->protocol);
	if (fd < 0) {
		fail(w, errno, "socket(AF_NETLINK, %d)", w->protocol);
		return;
	}
	buf = malloc(RECV_BUFFER_BYTES);
	if (!buf) {
		fail(w, ENOMEM, "recv");
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0) {
		fail(w, errno, "setsockopt SO_RCVTIMEO");
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
		fail(w, errno, "bind");
		goto out;
	}
	do
		n = sendto(fd, w->request, w->request_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fail(w, errno, "sendto");
		goto out;
	}
	for (;;) {
		n = recv(fd, buf, RECV_BUFFER_BYTES, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(w, errno == EAGAIN ? ETIMEDOUT : errno, "recv");
			break;
		}
		if (n == 0) {
			fail(w, EPIPE, "recv (socket closed before the final reply)");
			break;
		}
		if (take_replies(w, &cap, buf, (size_t)n, req->nlmsg_seq, local.nl_pid))
			break;
	}
out:
	free(buf);
	close(fd);
}

static bool valid_proc_net_name(const char *name)
{
	const char *c;

	/* One file directly under /proc/net ("rt6_stats", "softnet_stat"), nothing else. */
	if (!*name)
		return false;
	for (c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

static void do_proc_net(struct net_work *w)
{
	char path[128], chunk[4096];
	size_t cap = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/thread-self/net/%s", w->file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(w, errno, "open %s", path);
		return;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(w, errno, "read %s", path);
			break;
		}
		if (n == 0 || !append(w, &cap, chunk, (size_t)n, MAX_PROC_NET_TEXT))
			break;
	}
	close(fd);
}

static void do_op(struct net_work *w)
{
	if (w->op == OP_NETLINK)
		do_netlink(w);
	else
		do_proc_net(w);
}

static void run_op(void *arg)
{
	do_op(arg);
}

/*
 * A netlink request that changes something (rtnetlink: anything but a GET or
 * a dump) needs CAP_NET_ADMIN, checked against the socket's opener and the
 * sender: both are inside the raise. Reads need nothing.
 */
static bool changes(const struct net_work *w)
{
	const struct nlmsghdr *req = w->request;

	if (w->op != OP_NETLINK || (req->nlmsg_flags & NLM_F_DUMP))
		return false;
	return !(w->protocol == NETLINK_ROUTE && req->nlmsg_type >= RTM_BASE &&
		 (req->nlmsg_type - RTM_BASE) % 4 == 2);
}

static void execute(napi_env env, void *data)
{
	struct net_work *w = data;
	char failed[sizeof(w->call)];
	int err;

	(void)env;
	err = run_in_netns(w->ns_path, w->expected_inum, NULL, run_op, w,
			   changes(w) ? CAP_BIT(CAP_NET_ADMIN) : 0, failed, sizeof(failed));
	if (err)
		fail(w, err, "%s", failed);
}

static napi_value netlink_result(napi_env env, struct net_work *w)
{
	const struct nlmsghdr *nlh;
	napi_value list, item;
	size_t off = 0;
	uint32_t i = 0;

	if (napi_create_array(env, &list) != napi_ok)
		return NULL;
	while (off + NLMSG_HDRLEN <= w->reply_len) {
		nlh = (const struct nlmsghdr *)(w->reply + off);
		if (napi_create_buffer_copy(env, nlh->nlmsg_len, nlh, NULL, &item) != napi_ok ||
		    napi_set_element(env, list, i++, item) != napi_ok)
			return NULL;
		off += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return list;
}

static void complete(napi_env env, napi_status status, void *data)
{
	struct net_work *w = data;
	const char *ns = w->ns_path;
	napi_value result = NULL, error;

	if (status == napi_cancelled)
		fail(w, ECANCELED, "cancelled");
	if (w->err) {
		if (w->op == OP_NETLINK)
			error = errno_error(env, w->err, NULL, "netlink request type %u%s%s: %s",
					    w->request_type, ns ? " in " : "", ns ? ns : "", w->call);
		else
			error = errno_error(env, w->err, NULL, "/proc/net/%s%s%s: %s", w->file,
					    ns ? " in " : "", ns ? ns : "", w->call);
		if (error)
			napi_reject_deferred(env, w->deferred, error);
		goto out;
	}
	if (w->op == OP_NETLINK) {
		result = netlink_result(env, w);
	} else {
		if (napi_create_string_utf8(env, w->reply ? w->reply : "", w->reply_len, &result) != napi_ok)
			result = NULL;
	}
	if (result)
		napi_resolve_deferred(env, w->deferred, result);
	else if (napi_get_and_clear_last_exception(env, &error) == napi_ok)
		napi_reject_deferred(env, w->deferred, error);
out:
	napi_delete_async_work(env, w->work);
	free(w->ns_path);
	free(w->request);
	free(w->file);
	free(w->reply);
	free(w);
}

static void free_work(struct net_work *w)
{
	free(w->ns_path);
	free(w->request);
	free(w->file);
	free(w);
}

static napi_value queue(napi_env env, struct net_work *w)
{
	napi_value promise, name;

	if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
	    napi_create_string_utf8(env, "bpftune:netns-net", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_async_work(env, NULL, name, execute, complete, w, &w->work) != napi_ok) {
		free_work(w);
		throw_napi_failure(env, napi_generic_failure, "napi_create_async_work");
		return NULL;
	}
	if (napi_queue_async_work(env, w->work) != napi_ok) {
		napi_delete_async_work(env, w->work);
		free_work(w);
		throw_napi_failure(env, napi_generic_failure, "napi_queue_async_work");
		return NULL;
	}
	return promise;
}

static bool namespace_args(napi_env env, napi_value path, napi_value inum, struct net_work *w)
{
	int64_t value;

	if (!arg_optional_string(env, path, "nsPath", &w->ns_path) ||
	    !arg_int64(env, inum, "expectedInum", &value))
		return false;
	if (value < 0) {
		throw_plain(env, EINVAL, "expectedInum must not be negative");
		return false;
	}
	w->expected_inum = (uint64_t)value;
	return true;
}

static napi_value netlink_request(napi_env env, napi_callback_info info)
{
	size_t argc = 4, len;
	napi_value argv[4] = { NULL, NULL, NULL, NULL };
	struct net_work *w;
	int64_t protocol;
	void *data;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	w = calloc(1, sizeof(*w));
	if (!w) {
		throw_errno(env, ENOMEM, "netlinkRequest");
		return NULL;
	}
	w->op = OP_NETLINK;
	if (!namespace_args(env, argv[0], argv[1], w) ||
	    !arg_int64(env, argv[2], "protocol", &protocol) ||
	    !arg_buffer(env, argv[3], "message", &data, &len))
		goto bad;
	if (protocol < 0 || protocol > 31) {
		throw_plain(env, EINVAL, "netlink protocol %lld is out of range 0..31", (long long)protocol);
		goto bad;
	}
	if (len < NLMSG_HDRLEN || len != ((const struct nlmsghdr *)data)->nlmsg_len) {
		throw_plain(env, EINVAL, "netlink message of %zu bytes does not match its nlmsg_len", len);
		goto bad;
	}
	w->protocol = (int)protocol;
	/* A copy: the worker thread must not touch a JS buffer the caller may reuse. */
	w->request = malloc(len);
	if (!w->request) {
		throw_errno(env, ENOMEM, "netlinkRequest");
		goto bad;
	}
	memcpy(w->request, data, len);
	w->request_len = len;
	w->request_type = ((const struct nlmsghdr *)data)->nlmsg_type;
	return queue(env, w);
bad:
	free_work(w);
	return NULL;
}

static napi_value read_proc_net(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3] = { NULL, NULL, NULL };
	struct net_work *w;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	w = calloc(1, sizeof(*w));
	if (!w) {
		throw_errno(env, ENOMEM, "readProcNet");
		return NULL;
	}
	w->op = OP_PROC_NET;
	if (!namespace_args(env, argv[0], argv[1], w) || !arg_string(env, argv[2], "file", &w->file))
		goto bad;
	if (!valid_proc_net_name(w->file)) {
		throw_plain(env, EINVAL, "/proc/net/%s: invalid name (one file name of letters, digits "
				 "and '_')", w->file);
		goto bad;
	}
	return queue(env, w);
bad:
	free_work(w);
	return NULL;
}

bool init_netns_net(napi_env env, napi_value exports)
{
	return export_function(env, exports, "netlinkRequest", netlink_request) &&
	       export_function(env, exports, "readProcNet", read_proc_net);
}
