// SPDX-License-Identifier: GPL-2.0
/*
 * syslog, pseudo-filesystem mounts and xattrs: thin wrappers over the system
 * calls, so the daemon needs no syslog module.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
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

static napi_value mount_filesystem(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3] = { NULL, NULL, NULL };
	char *fstype, *dir, *options;
	uint64_t raised;
	int err;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "fstype", &fstype))
		return NULL;
	if (!arg_string(env, argv[1], "dir", &dir)) {
		free(fstype);
		return NULL;
	}
	if (!arg_optional_string(env, argv[2], "options", &options)) {
		free(fstype);
		free(dir);
		return NULL;
	}
	/*
	 * Pseudo filesystems only (cgroup2, tracefs): the source is ignored by
	 * the kernel. options: the filesystem's own (e.g. cgroup2's nsdelegate),
	 * as mount(8)'s -o.
	 */
	raised = caps_raise(CAP_BIT(CAP_SYS_ADMIN));
	err = mount("none", dir, fstype, 0, options) < 0 ? errno : 0;
	caps_restore(raised);
	if (err)
		throw_errno(env, err, "%s: mount %s", dir, fstype);
	free(fstype);
	free(dir);
	free(options);
	return NULL;
}

static napi_value unmount_dir(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1] = { NULL };
	uint64_t raised;
	char *dir;
	int err;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "dir", &dir))
		return NULL;
	raised = caps_raise(CAP_BIT(CAP_SYS_ADMIN));
	err = umount2(dir, MNT_DETACH) < 0 ? errno : 0;
	caps_restore(raised);
	if (err)
		throw_errno(env, err, "%s: umount2", dir);
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

/*
 * mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD): from what size a
 * block gets its own mapping, and how much free space at the heap's top
 * glibc keeps before returning it. False when glibc refused a value (the
 * mmap threshold's ceiling is 32 MiB on 64-bit).
 */
static napi_value js_malloc_thresholds(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL };
	int64_t mmap_bytes, trim_bytes;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_int64(env, argv[0], "mmapThreshold", &mmap_bytes) ||
	    !arg_int64(env, argv[1], "trimThreshold", &trim_bytes))
		return NULL;
	if (mmap_bytes < 0 || mmap_bytes > INT32_MAX || trim_bytes < 0 || trim_bytes > INT32_MAX) {
		throw_plain(env, EINVAL, "mallocThresholds: thresholds must be 0 to %d bytes", INT32_MAX);
		return NULL;
	}
	return make_bool(env, mallopt(M_MMAP_THRESHOLD, (int)mmap_bytes) == 1 &&
				      mallopt(M_TRIM_THRESHOLD, (int)trim_bytes) == 1);
}

bool init_system(napi_env env, napi_value exports)
{
	return export_function(env, exports, "openlog", js_openlog) &&
	       export_function(env, exports, "syslog", js_syslog) &&
	       export_function(env, exports, "mountFilesystem", mount_filesystem) &&
	       export_function(env, exports, "unmount", unmount_dir) &&
	       export_function(env, exports, "xattrExists", xattr_exists) &&
	       export_function(env, exports, "mallocTrim", js_malloc_trim) &&
	       export_function(env, exports, "mallocThresholds", js_malloc_thresholds);
}
