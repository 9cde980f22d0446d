// SPDX-License-Identifier: GPL-2.0
/*
 * libbpf reports the reason for most failures (the verifier log above all)
 * only through its print callback, not in the returned error. We keep the
 * tail of that output since the last open/load/attach so a failure of those
 * can put it in the thrown Error, and forward everything to stderr only when
 * asked (-d).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "addon.h"

/* The verifier's complaint is at the end of its log, so the tail is what matters. */
#define CAPTURE_SIZE (16 * 1024)

/* libbpf's print hook is process-wide, while each worker thread has its own env. */
static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static char capture[CAPTURE_SIZE + 1];
static size_t capture_len;
static atomic_bool debug_enabled;

static void capture_append(const char *text, size_t len)
{
	size_t drop;
	char *nl;

	if (len >= CAPTURE_SIZE) {
		text += len - CAPTURE_SIZE;
		len = CAPTURE_SIZE;
		capture_len = 0;
	}
	if (capture_len + len > CAPTURE_SIZE) {
		drop = capture_len + len - CAPTURE_SIZE;
		/* Start the kept text on a line boundary when one is near. */
		nl = memchr(capture + drop, '\n', capture_len - drop);
		if (nl)
			drop = (size_t)(nl - capture) + 1;
		memmove(capture, capture + drop, capture_len - drop);
		capture_len -= drop;
	}
	memcpy(capture + capture_len, text, len);
	capture_len += len;
	capture[capture_len] = '\0';
}

static PRINTF_LIKE(2, 0) int libbpf_print(enum libbpf_print_level level, const char *fmt,
					 va_list ap)
{
	char small[512];
	char *text = small;
	va_list copy;
	int len;

	if (atomic_load(&debug_enabled)) {
		va_copy(copy, ap);
		vfprintf(stderr, fmt, copy);
		va_end(copy);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(copy, ap);
	len = vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	if (len < 0)
		return 0;
	/* The verifier log arrives as one large message. */
	if ((size_t)len >= sizeof(small)) {
		text = malloc((size_t)len + 1);
		if (!text)
			return 0;
		vsnprintf(text, (size_t)len + 1, fmt, ap);
	}
	pthread_mutex_lock(&capture_lock);
	capture_append(text, (size_t)len);
	pthread_mutex_unlock(&capture_lock);
	if (text != small)
		free(text);
	return 0;
}

void libbpf_log_install(void)
{
	libbpf_set_print(libbpf_print);
}

void libbpf_log_set_debug(bool enabled)
{
	atomic_store(&debug_enabled, enabled);
}

void libbpf_log_reset(void)
{
	pthread_mutex_lock(&capture_lock);
	capture_len = 0;
	capture[0] = '\0';
	pthread_mutex_unlock(&capture_lock);
}

char *libbpf_log_take(void)
{
	char *copy;
	size_t len;

	pthread_mutex_lock(&capture_lock);
	len = capture_len;
	/* Trailing newlines would leave a blank last line in the message. */
	while (len && capture[len - 1] == '\n')
		len--;
	copy = strndup(capture, len);
	pthread_mutex_unlock(&capture_lock);
	return copy;
}
