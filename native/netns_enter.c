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

int run_in_netns(const char *ns_path, uint64_t expected_inum, uint64_t *inum,
		 void (*op)(void *arg), void *arg, char *failed, size_t failed_len)
{
	struct stat target_st, own_st;
	int target, own = -1, err = 0;

	if (!ns_path) {
		op(arg);
		return 0;
	}
	target = open(ns_path, O_RDONLY | O_CLOEXEC);
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
		op(arg);
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		err = errno;
		snprintf(failed, failed_len, "setns %s", ns_path);
		goto out;
	}
	op(arg);
	/*
	 * A pool thread left in a foreign namespace would silently run every
	 * later namespace-relative access (ours and anyone's) there. Nothing
	 * can undo that, so stop rather than carry on corrupt.
	 */
	if (setns(own, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bpftune: cannot return a worker thread to its network namespace "
				"after entering %s: %s; aborting\n", ns_path, strerror(errno));
		abort();
	}
out:
	if (own >= 0)
		close(own);
	close(target);
	return err;
}
