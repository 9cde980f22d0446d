// SPDX-License-Identifier: GPL-2.0
/*
 * The one place a worker thread enters a network namespace. A /proc/sys
 * file, a /proc/net file and a netlink socket all belong to the namespace of
 * the calling *thread*, so work for another namespace runs on a libuv pool
 * thread that setns()es in, does the work, and setns()es back before it
 * takes anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "addon.h"

#define OWN_NETNS "/proc/thread-self/ns/net"

static void run_op(void (*op)(void *arg), void *arg, uint64_t op_caps)
{
	uint64_t raised = caps_raise(op_caps);

	op(arg);
	caps_restore(raised);
}

/* setns(2) needs CAP_SYS_ADMIN over the namespace entered and over our own. */
static int enter(int fd)
{
	uint64_t raised = caps_raise(CAP_BIT(CAP_SYS_ADMIN));
	int err = setns(fd, CLONE_NEWNET) < 0 ? errno : 0;

	caps_restore(raised);
	return err;
}

/*
 * /proc/<pid>/ns/net of another process: the kernel's ptrace access check
 * wants CAP_SYS_PTRACE unless that process's permitted set is within our
 * (empty) effective one, i.e. for nearly every process. A bind mount under
 * /var/run/netns needs nothing.
 */
static int open_netns(const char *ns_path)
{
	bool other_process = !strncmp(ns_path, "/proc/", 6) && strncmp(ns_path, "/proc/self/", 11) &&
			     strncmp(ns_path, "/proc/thread-self/", 18);
	uint64_t raised = other_process ? caps_raise(CAP_BIT(CAP_SYS_PTRACE)) : UINT64_MAX;
	int fd = open(ns_path, O_RDONLY | O_CLOEXEC);

	caps_restore(raised);
	return fd;
}

int run_in_netns(const char *ns_path, uint64_t expected_inum, uint64_t *inum,
		 void (*op)(void *arg), void *arg, uint64_t op_caps, char *failed,
		 size_t failed_len)
{
	struct stat target_st, own_st;
	int target, own = -1, err = 0;

	if (!ns_path) {
		run_op(op, arg, op_caps);
		return 0;
	}
	target = open_netns(ns_path);
	if (target < 0) {
		err = errno;
		snprintf(failed, failed_len, "open %s", ns_path);
		return err;
	}
	if (fstat(target, &target_st) < 0) {
		err = errno;
		snprintf(failed, failed_len, "fstat %s", ns_path);
		goto out;
	}
	if (inum)
		*inum = target_st.st_ino;
	/* A /proc/<pid> path can now belong to a different process and namespace. */
	if (expected_inum && target_st.st_ino != expected_inum) {
		err = ESTALE;
		snprintf(failed, failed_len, "%s: namespace inode is %llu, expected %llu", ns_path,
			 (unsigned long long)target_st.st_ino, (unsigned long long)expected_inum);
		goto out;
	}
	own = open(OWN_NETNS, O_RDONLY | O_CLOEXEC);
	if (own < 0 || fstat(own, &own_st) < 0) {
		err = errno;
		snprintf(failed, failed_len, "open " OWN_NETNS);
		goto out;
	}
	if (own_st.st_dev == target_st.st_dev && own_st.st_ino == target_st.st_ino) {
		run_op(op, arg, op_caps);
		goto out;
	}
	err = enter(target);
	if (err) {
		snprintf(failed, failed_len, "setns %s", ns_path);
		goto out;
	}
	run_op(op, arg, op_caps);
	/*
	 * A pool thread left in a foreign namespace would silently run every
	 * later namespace-relative access (ours and anyone's) there. Nothing
	 * can undo that, so stop rather than carry on corrupt.
	 */
	err = enter(own);
	if (err) {
		fprintf(stderr, "bpftune: cannot return a worker thread to its network namespace "
				"after entering %s: %s; aborting\n", ns_path, strerror(err));
		abort();
	}
out:
	if (own >= 0)
		close(own);
	close(target);
	return err;
}

/*
 * netnsInodes(pids): the network namespace inode of each /proc/<pid>, 0 where
 * it cannot be read (gone, or a kernel thread). One raise of CAP_SYS_PTRACE
 * for the whole scan, on this thread only (see open_netns).
 */
static napi_value netns_inodes(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1] = { NULL }, result, item;
	uint32_t n, i;
	bool is_array = false;
	uint64_t raised;
	int64_t pid;
	char path[64];
	struct stat st;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!argv[0] || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
		throw_type(env, "pids must be an array of numbers");
		return NULL;
	}
	NAPI_CALL(env, napi_get_array_length(env, argv[0], &n), NULL);
	NAPI_CALL(env, napi_create_array_with_length(env, n, &result), NULL);
	for (i = 0; i < n; i++) {
		NAPI_CALL(env, napi_get_element(env, argv[0], i, &item), NULL);
		if (!arg_int64(env, item, "pid", &pid))
			return NULL;
		if (pid <= 0 || pid > INT32_MAX) {
			throw_plain(env, EINVAL, "netnsInodes: pid %lld is out of range", (long long)pid);
			return NULL;
		}
	}
	raised = caps_raise(CAP_BIT(CAP_SYS_PTRACE));
	for (i = 0; i < n; i++) {
		if (napi_get_element(env, argv[0], i, &item) != napi_ok ||
		    napi_get_value_int64(env, item, &pid) != napi_ok)
			break;
		snprintf(path, sizeof(path), "/proc/%lld/ns/net", (long long)pid);
		if (stat(path, &st) < 0)
			st.st_ino = 0;
		if (napi_set_element(env, result, i, make_double(env, (double)st.st_ino)) != napi_ok)
			break;
	}
	caps_restore(raised);
	if (i < n) {
		throw_napi_failure(env, napi_generic_failure, "netnsInodes");
		return NULL;
	}
	return result;
}

bool init_netns_enter(napi_env env, napi_value exports)
{
	return export_function(env, exports, "netnsInodes", netns_inodes);
}
