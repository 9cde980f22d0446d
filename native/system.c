// SPDX-License-Identifier: GPL-2.0
/*
 * syslog, capabilities and pseudo-filesystem mounts: thin wrappers over the system
 * calls, so the daemon needs neither libcap nor a syslog module.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include "addon.h"

/* openlog(3) keeps the pointer, so the ident must outlive every later syslog(). */
static char *log_ident;

static napi_value js_openlog(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1] = { NULL };
	char *ident, *old = log_ident;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "ident", &ident))
		return NULL;
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_ident = ident;
	free(old);
	return NULL;
}

static napi_value js_syslog(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL };
	int64_t priority;
	char *message;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_int64(env, argv[0], "priority", &priority) ||
	    !arg_string(env, argv[1], "message", &message))
		return NULL;
	if (priority < 0 || priority > INT32_MAX) {
		free(message);
		throw_plain(env, EINVAL, "syslog: invalid priority %lld", (long long)priority);
		return NULL;
	}
	syslog((int)priority, "%s", message);
	free(message);
	return NULL;
}

/* Version 3 carries 64 capability bits as two 32-bit words. */
static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

static napi_value get_capabilities(napi_env env, napi_callback_info info)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0, 0, 0 } };
	napi_value result;

	(void)info;
	if (syscall(SYS_capget, &hdr, data) < 0) {
		throw_errno(env, errno, "getCapabilities: capget");
		return NULL;
	}
	NAPI_CALL(env, napi_create_object(env, &result), NULL);
	if (!set_prop(env, result, "effective",
		      make_bigint(env, join(data[0].effective, data[1].effective))) ||
	    !set_prop(env, result, "permitted",
		      make_bigint(env, join(data[0].permitted, data[1].permitted))) ||
	    !set_prop(env, result, "inheritable",
		      make_bigint(env, join(data[0].inheritable, data[1].inheritable))))
		return NULL;
	return result;
}

static bool cap_field(napi_env env, napi_value caps, const char *key, uint64_t *out)
{
	napi_value v;

	NAPI_CALL(env, napi_get_named_property(env, caps, key, &v), false);
	return arg_bigint_u64(env, v, key, out);
}

/*
 * Note: capset() changes the calling (JS) thread only; threads that already
 * exist keep their sets, threads created later inherit the new ones.
 */
static napi_value set_capabilities(napi_env env, napi_callback_info info)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	size_t argc = 1;
	napi_value argv[1] = { NULL };
	napi_valuetype t = napi_undefined;
	uint64_t eff, perm, inh;
	int i;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (argv[0])
		NAPI_CALL(env, napi_typeof(env, argv[0], &t), NULL);
	if (t != napi_object) {
		throw_type(env, "caps must be an object {effective, permitted, inheritable}");
		return NULL;
	}
	if (!cap_field(env, argv[0], "effective", &eff) ||
	    !cap_field(env, argv[0], "permitted", &perm) ||
	    !cap_field(env, argv[0], "inheritable", &inh))
		return NULL;
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		data[i].effective = (uint32_t)(eff >> (32 * i));
		data[i].permitted = (uint32_t)(perm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0) {
		throw_errno(env, errno, "setCapabilities: capset");
		return NULL;
	}
	return NULL;
}

static napi_value mount_filesystem(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL };
	char *fstype, *dir;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "fstype", &fstype))
		return NULL;
	if (!arg_string(env, argv[1], "dir", &dir)) {
		free(fstype);
		return NULL;
	}
	/* Pseudo filesystems only (cgroup2, tracefs): the source is ignored by the kernel. */
	if (mount("none", dir, fstype, 0, NULL) < 0)
		throw_errno(env, errno, "%s: mount %s", dir, fstype);
	free(fstype);
	free(dir);
	return NULL;
}

static napi_value unmount_dir(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1] = { NULL };
	char *dir;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "dir", &dir))
		return NULL;
	if (umount2(dir, MNT_DETACH) < 0)
		throw_errno(env, errno, "%s: umount2", dir);
	free(dir);
	return NULL;
}

/*
 * Whether a path (not followed if a symlink) carries an extended attribute;
 * plugin checks use it to refuse POSIX ACLs. A filesystem without xattr
 * support has none.
 */
static napi_value xattr_exists(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL };
	char *file, *name;
	ssize_t size;
	int err;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "path", &file))
		return NULL;
	if (!arg_string(env, argv[1], "name", &name)) {
		free(file);
		return NULL;
	}
	size = lgetxattr(file, name, NULL, 0);
	err = errno;
	if (size < 0 && err != ENODATA && err != ENOTSUP && err != EOPNOTSUPP) {
		throw_errno(env, err, "%s: lgetxattr %s", file, name);
		free(file);
		free(name);
		return NULL;
	}
	free(file);
	free(name);
	return make_bool(env, size >= 0);
}

/*
 * malloc_trim(0): glibc keeps freed memory of its heap and arenas mapped for
 * reuse; this returns the free pages to the kernel (MADV_DONTNEED), also
 * those below the top of the heap. True when something was released.
 */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info)
{
	(void)info;
	return make_bool(env, malloc_trim(0) != 0);
}

bool init_system(napi_env env, napi_value exports)
{
	return export_function(env, exports, "openlog", js_openlog) &&
	       export_function(env, exports, "syslog", js_syslog) &&
	       export_function(env, exports, "getCapabilities", get_capabilities) &&
	       export_function(env, exports, "setCapabilities", set_capabilities) &&
	       export_function(env, exports, "mountFilesystem", mount_filesystem) &&
	       export_function(env, exports, "unmount", unmount_dir) &&
	       export_function(env, exports, "xattrExists", xattr_exists) &&
	       export_function(env, exports, "mallocTrim", js_malloc_trim);
}
