/*
 * qmp.h - a small client for the QEMU Machine Protocol over a Unix socket.
 *
 * Connects, reads the greeting, negotiates capabilities (qmp_capabilities),
 * executes one command at a time and waits for its return; asynchronous
 * events that arrive meanwhile are queued, so a caller can later wait for
 * e.g. DEVICE_DELETED without missing one that came early. Errors from QEMU
 * are kept verbatim (the "desc" of the error object) for the caller to show.
 *
 * JSON goes through json-c. Objects passed in are borrowed; objects handed
 * out belong to the caller (json_object_put them). Functions return 0 or
 * -errno and never print. QEMU's own errors are -EREMOTEIO, with the text
 * in fm_qmp_error(). Not thread-safe: one connection, one thread.
 */
#ifndef FM_CLI_QMP_H
#define FM_CLI_QMP_H

#include <json-c/json.h>

struct fm_qmp;

/* Connect to the QMP Unix socket at path, read the greeting and leave
 * negotiation mode. timeout_ms bounds each wait for QEMU (connect retries for
 * a socket that does not exist yet are the caller's business).
 * -ENOENT/-ECONNREFUSED: nothing listening; -ETIMEDOUT: no greeting;
 * -EPROTO: the peer does not speak QMP. */
int fm_qmp_connect(const char *path, int timeout_ms, struct fm_qmp **out);

void fm_qmp_close(struct fm_qmp *q);

/* Change how long fm_qmp_execute waits for an answer (e.g. a short wait for
 * the greeting, a longer one for commands). */
void fm_qmp_set_timeout(struct fm_qmp *q, int timeout_ms);

/* Execute cmd with args (NULL for none; borrowed) and wait for its return.
 * On success *ret (if ret is not NULL) receives the "return" value.
 * -EREMOTEIO: QEMU answered with an error, see fm_qmp_error();
 * -ETIMEDOUT: no answer within the connection's timeout;
 * -EPIPE: QEMU closed the connection (quit, crash). */
int fm_qmp_execute(struct fm_qmp *q, const char *cmd, json_object *args, json_object **ret);

/* Wait up to timeout_ms for an event named name (queued ones first) for
 * which match(event "data", arg) returns true (match may be NULL: any).
 * Events that do not match stay queued. *ev receives the whole event
 * object ({"event", "data", "timestamp"}). -ETIMEDOUT when none came. */
int fm_qmp_wait_event(struct fm_qmp *q, const char *name, int timeout_ms,
		      int (*match)(json_object *data, void *arg), void *arg, json_object **ev);

/* Take every queued event named name (NULL: all), oldest first, as a new
 * json array the caller owns (empty when there were none). */
json_object *fm_qmp_take_events(struct fm_qmp *q, const char *name);

/* The "desc" of QEMU's last error answer, and its "class"
 * (e.g. "GenericError", "DeviceNotFound"); "" when there was none. */
const char *fm_qmp_error(const struct fm_qmp *q);
const char *fm_qmp_error_class(const struct fm_qmp *q);

/* The pid of the QEMU process at the other end of the socket (SO_PEERCRED),
 * or -errno. */
int fm_qmp_peer_pid(const struct fm_qmp *q);

/* QEMU's version from the greeting, e.g. 7.2.22 as 70222 (major*10000 +
 * minor*100 + micro). */
int fm_qmp_version(const struct fm_qmp *q);

#endif
