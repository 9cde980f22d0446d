// SPDX-License-Identifier: GPL-2.0
/*
 * Capabilities: narrowed once, before Node starts any thread; afterwards
 * every thread's effective set is empty, and a capability is raised on the
 * calling thread only around the system call that needs it (caps_raise /
 * caps_restore, used by bpf_object.c, ring_buffer.c, netns_enter.c, system.c).
 *
 * Why a constructor: Linux keeps capability sets per thread and capset(2)
 * changes only the caller. Node starts its platform threads and its inspector
 * signal thread (which blocks every signal, so no signal-driven broadcast
 * reaches it) before any JavaScript runs. So bin/bpftune relaunches node
 * (relaunch(), an execve) with this addon in LD_PRELOAD and the set to keep in
 * BPFTUNE_KEEP_CAPS; this constructor then runs while the process has one
 * thread, and every thread Node or libuv creates later inherits
 * permitted = the kept set, effective = empty, and the securebits below.
 * The variables are removed, so nothing the daemon starts inherits them.
 *
 * The daemon stays uid 0 (its files and /proc/sys are root's). For uid 0,
 * execve() would grant the whole bounding set again unless SECBIT_NOROOT is
 * set; with it, SECBIT_NO_CAP_AMBIENT_RAISE and no_new_privs, anything the
 * daemon (or a bug in it) executed would start with no capabilities at all.
 * SECBIT_NO_SETUID_FIXUP stays off: a uid change away from 0 should still
 * drop every capability. The bits are locked so they cannot be undone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include "addon.h"

#define KEEP_ENV "BPFTUNE_KEEP_CAPS"
#define LOCKED_SECUREBITS                                                                      \
	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |                \
	 SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

#define NOROOT_LOCKED (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED)

struct cap_sets {
	uint64_t effective, permitted, inheritable;
};

/* What the constructor did, for capabilityState(); set once before any thread exists. */
static bool relaunched;
static char narrow_failure[160];

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

/* The calling thread's sets (version 3: 64 bits as two 32-bit words). */
static int read_caps(struct cap_sets *c)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return errno;
	c->effective = join(data[0].effective, data[1].effective);
	c->permitted = join(data[0].permitted, data[1].permitted);
	c->inheritable = join(data[0].inheritable, data[1].inheritable);
	return 0;
}

static int write_caps(const struct cap_sets *c)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int i;

	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		data[i].effective = (uint32_t)(c->effective >> (32 * i));
		data[i].permitted = (uint32_t)(c->permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(c->inheritable >> (32 * i));
	}
	return syscall(SYS_capset, &hdr, data) < 0 ? errno : 0;
}

uint64_t caps_raise(uint64_t want)
{
	struct cap_sets c = { 0, 0, 0 };

	if (read_caps(&c))
		return UINT64_MAX;
	/* Only what is permitted: the call then fails with the kernel's own EPERM. */
	if ((c.effective | (want & c.permitted)) != c.effective) {
		uint64_t previous = c.effective;

		c.effective |= want & c.permitted;
		if (write_caps(&c) == 0)
			return previous;
	}
	return UINT64_MAX;
}

void caps_restore(uint64_t previous)
{
	struct cap_sets c = { 0, 0, 0 };
	int saved_errno = errno;

	/* UINT64_MAX: caps_raise changed nothing. */
	if (previous != UINT64_MAX && read_caps(&c) == 0) {
		c.effective = previous;
		write_caps(&c);
	}
	errno = saved_errno;
}

static void narrow_failed(int err, const char *step)
{
	if (!narrow_failure[0])
		snprintf(narrow_failure, sizeof(narrow_failure), "%s: %s", step, strerror(err));
}

/* LD_PRELOAD without its first entry, which relaunch() put there (this addon). */
static void drop_own_preload(void)
{
	const char *preload = getenv("LD_PRELOAD");
	const char *rest = preload ? strchr(preload, ':') : NULL;

	if (rest && rest[1])
		setenv("LD_PRELOAD", rest + 1, 1);
	else
		unsetenv("LD_PRELOAD");
}

static void narrow(uint64_t keep)
{
	struct cap_sets c = { 0, 0, 0 };
	int bits, cap, err;

	/*
	 * Needs CAP_SETPCAP, which systemd's unit does not give: there its
	 * SecureBits= set NOROOT (and AmbientCapabilities= carry the kept set
	 * through the execs), which is the bit that matters.
	 */
	bits = prctl(PR_GET_SECUREBITS);
	if (bits < 0 || ((bits & LOCKED_SECUREBITS) != LOCKED_SECUREBITS &&
			 prctl(PR_SET_SECUREBITS, bits | LOCKED_SECUREBITS) < 0 &&
			 (bits & NOROOT_LOCKED) != NOROOT_LOCKED))
		narrow_failed(errno, "prctl PR_SET_SECUREBITS");
	for (cap = 0; cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		err = prctl(PR_CAPBSET_READ, cap);
		if (err < 0)
			break; /* past the kernel's last capability */
		if (err == 1 && prctl(PR_CAPBSET_DROP, cap) < 0) {
			narrow_failed(errno, "prctl PR_CAPBSET_DROP");
			break;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		narrow_failed(errno, "prctl PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		narrow_failed(errno, "prctl PR_CAP_AMBIENT_CLEAR_ALL");
	err = read_caps(&c);
	if (!err) {
		c.permitted &= keep;
		c.effective = 0;
		c.inheritable = 0;
		err = write_caps(&c);
	}
	if (err)
		narrow_failed(err, "capset");
}

__attribute__((constructor)) static void narrow_before_threads(void)
{
	const char *spec = getenv(KEEP_ENV);
	char *end;
	uint64_t keep;

	if (!spec)
		return;
	relaunched = true;
	errno = 0;
	keep = strtoull(spec, &end, 16);
	if (errno || end == spec || *end)
		narrow_failed(EINVAL, KEEP_ENV " is not a hexadecimal capability mask");
	else
		narrow(keep);
	drop_own_preload();
	unsetenv(KEEP_ENV);
}

static napi_value get_capabilities(napi_env env, napi_callback_info info)
{
	struct cap_sets c = { 0, 0, 0 };
	napi_value result;
	int err;

	(void)info;
	err = read_caps(&c);
	if (err) {
		throw_errno(env, err, "getCapabilities: capget");
		return NULL;
	}
	NAPI_CALL(env, napi_create_object(env, &result), NULL);
	if (!set_prop(env, result, "effective", make_bigint(env, c.effective)) ||
	    !set_prop(env, result, "permitted", make_bigint(env, c.permitted)) ||
	    !set_prop(env, result, "inheritable", make_bigint(env, c.inheritable)))
		return NULL;
	return result;
}

static napi_value capability_state(napi_env env, napi_callback_info info)
{
	napi_value result;

	(void)info;
	NAPI_CALL(env, napi_create_object(env, &result), NULL);
	if (!set_prop(env, result, "relaunched", make_bool(env, relaunched)) ||
	    !set_prop(env, result, "failure", narrow_failure[0] ? make_string(env, narrow_failure)
								 : make_undefined(env)))
		return NULL;
	return result;
}

static bool string_list(napi_env env, napi_value list, const char *what, char ***out)
{
	uint32_t n, i;
	napi_value item;
	char **strings;
	bool ok = false;

	if (napi_is_array(env, list, &ok) != napi_ok || !ok) {
		throw_type(env, "%s must be an array of strings", what);
		return false;
	}
	NAPI_CALL(env, napi_get_array_length(env, list, &n), false);
	strings = calloc((size_t)n + 1, sizeof(*strings));
	if (!strings) {
		throw_errno(env, ENOMEM, "%s", what);
		return false;
	}
	for (i = 0; i < n; i++) {
		if (napi_get_element(env, list, i, &item) != napi_ok ||
		    !arg_string(env, item, what, &strings[i]))
			break;
	}
	if (i == n) {
		*out = strings;
		return true;
	}
	while (i > 0)
		free(strings[--i]);
	free(strings);
	return false;
}

static void free_list(char **strings)
{
	char **s;

	for (s = strings; s && *s; s++)
		free(*s);
	free(strings);
}

/* Node (libuv) may have marked stdin/stdout/stderr close-on-exec; the relaunched daemon needs them. */
static void keep_stdio_open(void)
{
	int fd, flags;

	for (fd = 0; fd <= 2; fd++) {
		flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && (flags & FD_CLOEXEC))
			fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
	}
}

/* execve(file, argv, env): only returns (throwing) when the exec failed. */
static napi_value relaunch(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3] = { NULL, NULL, NULL };
	char *file = NULL, **args = NULL, **vars = NULL;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (arg_string(env, argv[0], "file", &file) && string_list(env, argv[1], "argv", &args) &&
	    string_list(env, argv[2], "env", &vars)) {
		keep_stdio_open();
		execve(file, args, vars);
		throw_errno(env, errno, "execve %s", file);
	}
	free(file);
	free_list(args);
	free_list(vars);
	return NULL;
}

bool init_capabilities(napi_env env, napi_value exports)
{
	return export_function(env, exports, "getCapabilities", get_capabilities) &&
	       export_function(env, exports, "capabilityState", capability_state) &&
	       export_function(env, exports, "relaunch", relaunch);
}
