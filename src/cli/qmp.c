/*
 * qmp.c - QMP client: a Unix socket, newline-separated JSON messages parsed
 * with json-c, one command in flight at a time (matched by "id"), events
 * queued until someone asks for them. It knows nothing about memory devices;
 * src/cli/vm.c builds the commands. See qmp.h for the contract.
 */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct fm_qmp {
	int fd;
	int timeout_ms;		/* per-command wait for an answer */
	char *buf;		/* bytes received, not yet parsed */
	size_t len, cap;
	json_object *events;	/* array of queued events, oldest first */
	unsigned long next_id;	/* "id" of the next command */
	int version;		/* major*10000 + minor*100 + micro */
	char err[1024];		/* last error "desc", verbatim */
	char err_class[64];	/* last error "class" */
};

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Take one complete line out of the buffer and parse it. 1: *msg set;
 * 0: no complete line yet; -EPROTO: a line that is not a JSON object. */
static int take_line(struct fm_qmp *q, json_object **msg)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		if (!nl)
			return 0;
		size_t n = (size_t)(nl - q->buf);
		*nl = '\0';
		if (n > 0 && q->buf[n - 1] == '\r')
			q->buf[n - 1] = '\0';
		const char *s = q->buf;
		while (*s == ' ' || *s == '\t')
			s++;
		json_object *o = NULL;
		int empty = *s == '\0';
		if (!empty) {
			enum json_tokener_error jerr;
			o = json_tokener_parse_verbose(s, &jerr);
		}
		memmove(q->buf, nl + 1, q->len - n - 1);
		q->len -= n + 1;
		if (empty)
			continue;
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return -EPROTO;
		}
		*msg = o;
		return 1;
	}
}

/* Read the next message, waiting until deadline (monotonic ms). */
static int read_message(struct fm_qmp *q, int64_t deadline, json_object **msg)
{
	for (;;) {
		int r = take_line(q, msg);
		if (r != 0)
			return r < 0 ? r : 0;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ETIMEDOUT;
		if (q->cap - q->len < 4096) {
			size_t cap = q->cap ? q->cap * 2 : 16384;
			char *b = realloc(q->buf, cap);
			if (!b)
				return -ENOMEM;
			q->buf = b;
			q->cap = cap;
		}
		ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		if (n == 0)
			return -EPIPE;
		q->len += (size_t)n;
	}
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static void set_error(struct fm_qmp *q, json_object *error)
{
	json_object *desc = NULL, *cls = NULL;
	json_object_object_get_ex(error, "desc", &desc);
	json_object_object_get_ex(error, "class", &cls);
	snprintf(q->err, sizeof(q->err), "%s", desc ? json_object_get_string(desc) : "(no desc)");
	snprintf(q->err_class, sizeof(q->err_class), "%s", cls ? json_object_get_string(cls) : "");
}

static int parse_greeting(struct fm_qmp *q, json_object *g)
{
	json_object *qmp, *ver, *qemu, *v;
	if (!json_object_object_get_ex(g, "QMP", &qmp))
		return -EPROTO;
	if (json_object_object_get_ex(qmp, "version", &ver) &&
	    json_object_object_get_ex(ver, "qemu", &qemu)) {
		int major = 0, minor = 0, micro = 0;
		if (json_object_object_get_ex(qemu, "major", &v))
			major = json_object_get_int(v);
		if (json_object_object_get_ex(qemu, "minor", &v))
			minor = json_object_get_int(v);
		if (json_object_object_get_ex(qemu, "micro", &v))
			micro = json_object_get_int(v);
		q->version = major * 10000 + minor * 100 + micro;
	}
	return 0;
}

int fm_qmp_connect(const char *path, int timeout_ms, struct fm_qmp **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	struct fm_qmp *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->timeout_ms = timeout_ms;
	q->next_id = 1;
	q->events = json_object_new_array();
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = q->fd < 0 || !q->events ? -errno : 0;
	if (r == 0 && connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = -errno;
	json_object *g = NULL;
	if (r == 0)
		r = read_message(q, now_ms() + timeout_ms, &g);
	if (r == 0)
		r = parse_greeting(q, g);
	json_object_put(g);
	if (r == 0)
		r = fm_qmp_execute(q, "qmp_capabilities", NULL, NULL);
	if (r < 0) {
		fm_qmp_close(q);
		return r;
	}
	*out = q;
	return 0;
}

void fm_qmp_close(struct fm_qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	json_object_put(q->events);
	free(q->buf);
	free(q);
}

int fm_qmp_execute(struct fm_qmp *q, const char *cmd, json_object *args, json_object **ret)
{
	unsigned long id = q->next_id++;
	json_object *req = json_object_new_object();
	if (!req)
		return -ENOMEM;
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	json_object_object_add(req, "id", json_object_new_int64((int64_t)id));
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	int r = send_all(q->fd, s, strlen(s));
	if (r == 0)
		r = send_all(q->fd, "\n", 1);
	json_object_put(req);
	if (r < 0)
		return r;

	q->err[0] = q->err_class[0] = '\0';
	int64_t deadline = now_ms() + q->timeout_ms;
	for (;;) {
		json_object *msg = NULL, *v;
		r = read_message(q, deadline, &msg);
		if (r < 0)
			return r;
		if (json_object_object_get_ex(msg, "event", &v)) {
			json_object_array_add(q->events, msg);
			continue;
		}
		/* an answer to an earlier command we gave up on: drop it */
		if (!json_object_object_get_ex(msg, "id", &v) ||
		    (unsigned long)json_object_get_int64(v) != id) {
			json_object_put(msg);
			continue;
		}
		if (json_object_object_get_ex(msg, "error", &v)) {
			set_error(q, v);
			r = -EREMOTEIO;
		} else if (json_object_object_get_ex(msg, "return", &v)) {
			if (ret)
				*ret = json_object_get(v);
		} else {
			r = -EPROTO;
		}
		json_object_put(msg);
		return r;
	}
}

static int event_is(json_object *ev, const char *name,
		    int (*match)(json_object *data, void *arg), void *arg)
{
	json_object *n, *data = NULL;
	if (!json_object_object_get_ex(ev, "event", &n))
		return 0;
	if (name && strcmp(json_object_get_string(n), name) != 0)
		return 0;
	json_object_object_get_ex(ev, "data", &data);
	return !match || match(data, arg);
}

int fm_qmp_wait_event(struct fm_qmp *q, const char *name, int timeout_ms,
		      int (*match)(json_object *data, void *arg), void *arg, json_object **ev)
{
	size_t n = json_object_array_length(q->events);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(q->events, i);
		if (event_is(e, name, match, arg)) {
			*ev = json_object_get(e);
			json_object_array_del_idx(q->events, i, 1);
			return 0;
		}
	}
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		json_object *msg = NULL, *v;
		int r = read_message(q, deadline, &msg);
		if (r < 0)
			return r;
		if (!json_object_object_get_ex(msg, "event", &v)) {
			json_object_put(msg);	/* a late answer: nobody waits for it */
			continue;
		}
		if (event_is(msg, name, match, arg)) {
			*ev = msg;
			return 0;
		}
		json_object_array_add(q->events, msg);
	}
}

json_object *fm_qmp_take_events(struct fm_qmp *q, const char *name)
{
	json_object *out = json_object_new_array();
	if (!out)
		return NULL;
	for (size_t i = 0; i < json_object_array_length(q->events);) {
		json_object *e = json_object_array_get_idx(q->events, i);
		if (event_is(e, name, NULL, NULL)) {
			json_object_array_add(out, json_object_get(e));
			json_object_array_del_idx(q->events, i, 1);
		} else {
			i++;
		}
	}
	return out;
}

void fm_qmp_set_timeout(struct fm_qmp *q, int timeout_ms)
{
	q->timeout_ms = timeout_ms;
}

const char *fm_qmp_error(const struct fm_qmp *q)
{
	return q->err;
}

const char *fm_qmp_error_class(const struct fm_qmp *q)
{
	return q->err_class;
}

int fm_qmp_peer_pid(const struct fm_qmp *q)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	return (int)cred.pid;
}

int fm_qmp_version(const struct fm_qmp *q)
{
	return q->version;
}
