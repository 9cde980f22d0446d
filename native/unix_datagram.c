// SPDX-License-Identifier: GPL-2.0
/*
 * One datagram to a unix socket path. Node has no unix datagram sockets, and
 * both of systemd's protocols need one: readiness (sd_notify, $NOTIFY_SOCKET)
 * and the journal's native protocol (/run/systemd/journal/socket). A path
 * starting with '@' names an abstract socket, as $NOTIFY_SOCKET may.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "addon.h"

static napi_value send_unix_datagram(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2] = { NULL, NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	size_t path_len, len;
	char *path;
	void *data;
	int fd, err = 0;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), NULL);
	if (!arg_string(env, argv[0], "path", &path))
		return NULL;
	if (!arg_buffer(env, argv[1], "data", &data, &len)) {
		free(path);
		return NULL;
	}
	path_len = strlen(path);
	if (path_len < 2 || path_len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
		throw_plain(env, EINVAL, "sendUnixDatagram: '%s' is not an absolute or '@' abstract socket path", path);
		free(path);
		return NULL;
	}
	memcpy(sa.sun_path, path, path_len);
	/* Abstract names are not NUL-terminated: the address length bounds them. */
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err = errno;
	else if (sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err)
		throw_errno(env, err, "%s: sendto (%zu bytes)", path, len);
	free(path);
	return NULL;
}

bool init_unix_datagram(napi_env env, napi_value exports)
{
	return export_function(env, exports, "sendUnixDatagram", send_unix_datagram);
}
