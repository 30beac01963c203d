/*
 * vm.c - `fluidmem vm hotplug|resize|list|unplug`: the QMP conversations
 * that give a running QEMU guest more memory (a pc-dimm backed by a new
 * memory-backend-memfd, or a bigger virtio-mem requested-size), show what it
 * has, and take a DIMM back. It does not touch fluidmem's monitor: whether
 * the memory is fluidmem memory depends only on QEMU running under
 * `fluidmem run` (the preload library registers memory-backend-memfd
 * mappings); the command checks that and says so. QEMU's errors are printed
 * verbatim after the step that failed.
 */
#include "vm.h"
#include "qmp.h"
#include "size.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define GUEST_BLOCK (128 * MiB)	/* Linux x86 onlines memory in 128 MiB blocks */

/* ACPI _OST status codes the guest reports for a DIMM (ACPI 6.x, 6.3.5). */
#define OST_SUCCESS 0x00
#define OST_EJECT_IN_PROGRESS 0x84

struct vm_opts {
	const char *qmp;	/* QMP socket path */
	const char *id;		/* device id (pc-dimm / virtio-mem) */
	uint64_t size;		/* --size in bytes */
	bool has_size;		/* --size was given (0 is a valid resize) */
	int node;		/* --node, -1 if absent */
	int timeout_s;		/* wait for QEMU and for device removal */
	int guest_wait_s;	/* wait for the guest to acknowledge */
	bool json;		/* list: JSON output */
	bool keep_backend;	/* unplug: leave the memory backend */
};

static const char *cmd_name = "fluidmem vm";

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", cmd_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- sizes -------------------------------------------------------------- */

/* "512 MiB", "8 GiB", "1.5 GiB", "4096 B": for people, never parsed back. */
static const char *fmt_size(uint64_t b, char *buf, size_t n)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	uint64_t d = 1;
	while (u < 4 && b >= d * 1024)
		d *= 1024, u++;
	if (b % d == 0)
		snprintf(buf, n, "%" PRIu64 " %s", b / d, unit[u]);
	else
		snprintf(buf, n, "%.1f %s", (double)b / (double)d, unit[u]);
	return buf;
}

/* ---- json helpers ------------------------------------------------------- */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *key, int64_t dflt)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_int64(v) : dflt;
}

static uint64_t juint(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_uint64(v) : 0;
}

/* "/objects/mem-fm0" -> "mem-fm0" */
static const char *basename_of(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path;
}

/* ---- QMP session -------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct fm_qmp *open_qmp(const struct vm_opts *o)
{
	/* A QMP socket serves one client at a time: a second one gets no
	 * greeting, so waiting long for it helps nobody. */
	int greet_s = o->timeout_s < 5 ? o->timeout_s : 5;
	struct fm_qmp *q;
	int r = fm_qmp_connect(o->qmp, greet_s * 1000, &q);
	if (r == 0) {
		fm_qmp_set_timeout(q, o->timeout_s * 1000);
		return q;
	}
	if (r == -ENOENT || r == -ECONNREFUSED)
		err("cannot connect to QMP socket %s: %s (is QEMU running with "
		    "-qmp unix:%s,server=on,wait=off?)", o->qmp, strerror(-r), o->qmp);
	else if (r == -ETIMEDOUT)
		err("no QMP greeting on %s within %d s (another client connected? "
		    "QEMU serves one client per QMP socket)", o->qmp, greet_s);
	else if (r == -EPROTO)
		err("%s does not speak QMP", o->qmp);
	else if (r == -EREMOTEIO)
		err("QEMU on %s refused qmp_capabilities (already negotiated?)", o->qmp);
	else
		err("QMP socket %s: %s", o->qmp, strerror(-r));
	return NULL;
}

/* Run one command; on failure print "<what>: <QEMU's desc>" and return r. */
static int run(struct fm_qmp *q, const char *what, const char *cmd, json_object *args,
	       json_object **ret)
{
	int r = fm_qmp_execute(q, cmd, args, ret);
	if (r == -EREMOTEIO)
		err("%s: %s", what, fm_qmp_error(q));
	else if (r == -EPIPE)
		err("%s: QEMU closed the QMP connection", what);
	else if (r < 0)
		err("%s: %s", what, strerror(-r));
	return r;
}

/* Does the QEMU process at the other end have the fluidmem preload library
 * loaded? 1 yes, 0 no, -1 unknown (no pid, no /proc access). */
static int qemu_has_preload(struct fm_qmp *q, int *pid_out)
{
	int pid = fm_qmp_peer_pid(q);
	*pid_out = pid;
	if (pid <= 0)
		return -1;
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "libfluidmem") != NULL;
	fclose(f);
	return found;
}

/* The VM's memory devices (query-memory-devices), backends (query-memdev
 * joined with their QOM types from qom-list /objects) and sizes. */
struct vm_state {
	json_object *devices;	/* array of {"type", "data"} */
	json_object *memdevs;	/* array from query-memdev */
	json_object *objects;	/* array from qom-list /objects */
	json_object *summary;	/* query-memory-size-summary */
};

static void state_free(struct vm_state *s)
{
	json_object_put(s->devices);
	json_object_put(s->memdevs);
	json_object_put(s->objects);
	json_object_put(s->summary);
	memset(s, 0, sizeof(*s));
}

static int state_read(struct fm_qmp *q, struct vm_state *s)
{
	memset(s, 0, sizeof(*s));
	json_object *args = json_object_new_object();
	json_object_object_add(args, "path", json_object_new_string("/objects"));
	int r = run(q, "query-memory-devices", "query-memory-devices", NULL, &s->devices);
	if (r == 0)
		r = run(q, "query-memdev", "query-memdev", NULL, &s->memdevs);
	if (r == 0)
		r = run(q, "qom-list /objects", "qom-list", args, &s->objects);
	if (r == 0)
		r = run(q, "query-memory-size-summary", "query-memory-size-summary", NULL,
			&s->summary);
	json_object_put(args);
	if (r < 0)
		state_free(s);
	return r;
}

/* The "data" of memory device id, or NULL; *type gets "dimm", "virtio-mem"... */
static json_object *find_device(const struct vm_state *s, const char *id, const char **type)
{
	for (size_t i = 0; i < json_object_array_length(s->devices); i++) {
		json_object *d = json_object_array_get_idx(s->devices, i);
		json_object *data = jget(d, "data");
		const char *did = jstr(data, "id");
		if (did && strcmp(did, id) == 0) {
			if (type)
				*type = jstr(d, "type");
			return data;
		}
	}
	return NULL;
}

/* QOM type of /objects/<name> ("memory-backend-memfd"), or NULL. */
static const char *object_type(const struct vm_state *s, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(s->objects); i++) {
		json_object *o = json_object_array_get_idx(s->objects, i);
		const char *n = jstr(o, "name"), *t = jstr(o, "type");
		if (n && t && strcmp(n, name) == 0) {
			if (strncmp(t, "child<", 6) == 0) {
				static char buf[128];
				snprintf(buf, sizeof(buf), "%.*s", (int)strlen(t) - 7, t + 6);
				return buf;
			}
			return t;
		}
	}
	return NULL;
}

/* The device using backend <name>, or NULL. */
static const char *backend_user(const struct vm_state *s, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(s->devices); i++) {
		json_object *data = jget(json_object_array_get_idx(s->devices, i), "data");
		const char *md = basename_of(jstr(data, "memdev"));
		if (md && strcmp(md, name) == 0)
			return jstr(data, "id") ? jstr(data, "id") : "(no id)";
	}
	return NULL;
}

static const char *type_name(const char *qapi_type)
{
	if (!qapi_type)
		return "?";
	if (strcmp(qapi_type, "dimm") == 0)
		return "pc-dimm";
	return qapi_type;	/* "nvdimm", "virtio-mem", "virtio-pmem", "sgx-epc" */
}

/* ---- hotplug ------------------------------------------------------------ */

static int match_device(json_object *data, void *arg)
{
	json_object *info = jget(data, "info");
	const char *dev = jstr(info ? info : data, "device");
	return dev && strcmp(dev, arg) == 0;
}

static void print_summary(const struct vm_state *s)
{
	char a[32], b[32], c[32];
	uint64_t base = juint(s->summary, "base-memory");
	uint64_t plugged = juint(s->summary, "plugged-memory");
	printf("guest memory: %s boot + %s hotplugged = %s\n", fmt_size(base, a, sizeof(a)),
	       fmt_size(plugged, b, sizeof(b)), fmt_size(base + plugged, c, sizeof(c)));
}

static void print_preload_note(struct fm_qmp *q)
{
	int pid, pre = qemu_has_preload(q, &pid);
	if (pre == 0)
		printf("warning: QEMU (pid %d) does not have the fluidmem preload library loaded: "
		       "this memory is ordinary host memory (start QEMU with 'fluidmem run -- "
		       "qemu-system-...')\n", pid);
	else if (pre > 0)
		printf("fluidmem: QEMU (pid %d) runs with the preload library; the backend is "
		       "fluidmem memory (see 'fluidmem status')\n", pid);
}

static int cmd_hotplug(const struct vm_opts *o)
{
	char id[64], backend[80], a[32], b[32];
	if (!o->has_size) {
		err("--size is required (e.g. --size 8G)");
		return 2;
	}
	if (o->size < MiB) {
		err("size %" PRIu64 " B is less than 1 MiB (sizes take K/M/G/T suffixes)",
		    o->size);
		return 2;
	}
	struct fm_qmp *q = open_qmp(o);
	if (!q)
		return 1;
	struct vm_state s;
	int rc = 1;
	if (state_read(q, &s) < 0)
		goto out_q;

	/* default id: the first fmN free both as a device and as mem-fmN */
	if (o->id) {
		if (strlen(o->id) >= sizeof(id)) {
			err("--id '%s' is too long (at most %zu characters)", o->id, sizeof(id) - 1);
			goto out_s;
		}
		snprintf(id, sizeof(id), "%s", o->id);
	} else {
		for (int n = 0; n < 1000; n++) {
			snprintf(id, sizeof(id), "fm%d", n);
			snprintf(backend, sizeof(backend), "mem-%s", id);
			if (!find_device(&s, id, NULL) && !object_type(&s, backend))
				break;
		}
	}
	snprintf(backend, sizeof(backend), "mem-%s", id);
	if (find_device(&s, id, NULL)) {
		err("the VM already has a memory device '%s' (see 'fluidmem vm list')", id);
		goto out_s;
	}
	if (object_type(&s, backend)) {
		err("the VM already has an object '%s' (left by 'unplug --keep-backend'?): "
		    "delete it with QMP object-del, or choose another --id", backend);
		goto out_s;
	}

	int64_t t0 = now_ms();
	json_object *args = json_object_new_object();
	json_object_object_add(args, "qom-type", json_object_new_string("memory-backend-memfd"));
	json_object_object_add(args, "id", json_object_new_string(backend));
	json_object_object_add(args, "size", json_object_new_uint64(o->size));
	json_object_object_add(args, "share", json_object_new_boolean(1));
	char what[160];
	snprintf(what, sizeof(what), "object-add %s", backend);
	int r = run(q, what, "object-add", args, NULL);
	json_object_put(args);
	if (r < 0)
		goto out_s;

	args = json_object_new_object();
	json_object_object_add(args, "driver", json_object_new_string("pc-dimm"));
	json_object_object_add(args, "id", json_object_new_string(id));
	json_object_object_add(args, "memdev", json_object_new_string(backend));
	if (o->node >= 0)
		json_object_object_add(args, "node", json_object_new_int(o->node));
	snprintf(what, sizeof(what), "device_add pc-dimm %s", id);
	r = run(q, what, "device_add", args, NULL);
	json_object_put(args);
	if (r < 0) {
		/* roll back, so a retry with the same id works */
		args = json_object_new_object();
		json_object_object_add(args, "id", json_object_new_string(backend));
		snprintf(what, sizeof(what), "object-del %s (rolling back)", backend);
		run(q, what, "object-del", args, NULL);
		json_object_put(args);
		goto out_s;
	}

	/* device_add is synchronous; still, wait until QEMU lists the DIMM */
	json_object *dev = NULL;
	int64_t deadline = now_ms() + o->timeout_s * 1000;
	for (;;) {
		state_free(&s);
		if (state_read(q, &s) < 0)
			goto out_q;
		if ((dev = find_device(&s, id, NULL)))
			break;
		if (now_ms() > deadline) {
			err("%s was added but QEMU does not list it after %d s", id,
			    o->timeout_s);
			goto out_s;
		}
		usleep(100 * 1000);
	}
	int64_t plug_ms = now_ms() - t0;

	uint64_t addr = juint(dev, "addr"), size = juint(dev, "size");
	printf("%s: %s pc-dimm, slot %" PRId64 ", node %" PRId64 ", guest-physical 0x%" PRIx64
	       "-0x%" PRIx64 ", backend %s (memory-backend-memfd), plugged in %" PRId64 " ms\n",
	       id, fmt_size(size, a, sizeof(a)), jint(dev, "slot", -1), jint(dev, "node", 0),
	       addr, addr + size - 1, backend, plug_ms);
	if (size % GUEST_BLOCK)
		printf("note: %s is not a multiple of 128 MiB; Linux guests online memory in "
		       "128 MiB blocks and leave the rest unused\n", fmt_size(size, b, sizeof(b)));

	/* the guest answers the ACPI insert notification with _OST */
	if (o->guest_wait_s > 0) {
		json_object *ev = NULL;
		r = fm_qmp_wait_event(q, "ACPI_DEVICE_OST", o->guest_wait_s * 1000, match_device,
				      id, &ev);
		if (r == 0) {
			int64_t st = jint(jget(jget(ev, "data"), "info"), "status", -1);
			if (st == OST_SUCCESS)
				/* Linux reports success even when add_memory failed
				 * (e.g. no boot RAM left for the memmap): the ack says
				 * the guest saw the DIMM, not that it uses it. */
				printf("guest: acknowledged %s after %" PRId64 " ms (ACPI _OST success; "
				       "the guest's MemTotal shows whether it onlined the memory)\n",
				       id, now_ms() - t0);
			else
				printf("guest: reported ACPI _OST status 0x%" PRIx64 " for %s "
				       "(the guest OS could not use the DIMM)\n", st, id);
			json_object_put(ev);
		} else if (r == -ETIMEDOUT) {
			printf("guest: no ACPI acknowledgement within %d s (no OS running yet, "
			       "or it lacks ACPI memory hotplug); the DIMM stays plugged\n",
			       o->guest_wait_s);
		}
	}
	print_summary(&s);
	print_preload_note(q);
	rc = 0;
out_s:
	state_free(&s);
out_q:
	fm_qmp_close(q);
	return rc;
}

/* ---- resize (virtio-mem) ------------------------------------------------ */

/* MEMORY_DEVICE_SIZE_CHANGE carries the device "id" when it has one */
static int match_id(json_object *data, void *arg)
{
	const char *id = jstr(data, "id");
	return id && strcmp(id, arg) == 0;
}

static int cmd_resize(const struct vm_opts *o)
{
	char a[32], b[32], c[32], e[32];
	if (!o->has_size) {
		err("--size is required (e.g. --size 12G)");
		return 2;
	}
	struct fm_qmp *q = open_qmp(o);
	if (!q)
		return 1;
	struct vm_state s;
	int rc = 1;
	if (state_read(q, &s) < 0)
		goto out_q;

	/* pick the virtio-mem device */
	json_object *dev = NULL;
	const char *id = NULL;
	int nvm = 0;
	char names[256] = "";
	for (size_t i = 0; i < json_object_array_length(s.devices); i++) {
		json_object *d = json_object_array_get_idx(s.devices, i);
		const char *t = jstr(d, "type"), *did = jstr(jget(d, "data"), "id");
		if (!t || strcmp(t, "virtio-mem") != 0)
			continue;
		nvm++;
		size_t l = strlen(names);
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", did ? did : "?");
		if (!o->id || (did && strcmp(did, o->id) == 0)) {
			dev = jget(d, "data");
			id = did;
		}
	}
	if (nvm == 0) {
		err("this VM has no virtio-mem device (start QEMU with -object "
		    "memory-backend-memfd,id=vmem0,size=MAX -device virtio-mem-pci,id=vm0,"
		    "memdev=vmem0; or add a DIMM with 'fluidmem vm hotplug')");
		goto out_s;
	}
	if (o->id && !dev) {
		const char *t = NULL;
		if (find_device(&s, o->id, &t))
			err("%s is a %s, not virtio-mem; DIMMs do not resize (hotplug "
			    "another one, or unplug it)", o->id, type_name(t));
		else
			err("no virtio-mem device '%s' (this VM has: %s)", o->id, names);
		goto out_s;
	}
	if (!o->id && nvm > 1) {
		err("the VM has several virtio-mem devices (%s): pass --id", names);
		goto out_s;
	}
	if (!id) {
		err("the virtio-mem device has no id; QOM cannot address it");
		goto out_s;
	}
	uint64_t max = juint(dev, "max-size"), block = juint(dev, "block-size");
	if (o->size > max) {
		err("%s is larger than %s's maximum %s (the size of its memory backend)",
		    fmt_size(o->size, a, sizeof(a)), id, fmt_size(max, b, sizeof(b)));
		goto out_s;
	}

	int64_t t0 = now_ms();
	json_object *args = json_object_new_object();
	json_object_object_add(args, "path", json_object_new_string(id));
	json_object_object_add(args, "property", json_object_new_string("requested-size"));
	json_object_object_add(args, "value", json_object_new_uint64(o->size));
	char what[160];
	snprintf(what, sizeof(what), "qom-set %s requested-size", id);
	int r = run(q, what, "qom-set", args, NULL);
	json_object_put(args);
	if (r < 0)
		goto out_s;

	/* The guest driver plugs or unplugs blocks; watch "size" follow. QEMU
	 * rate-limits MEMORY_DEVICE_SIZE_CHANGE to one a second, so between
	 * events ask query-memory-devices too. */
	uint64_t size = juint(dev, "size");
	int64_t deadline = now_ms() + o->guest_wait_s * 1000;
	while (size != o->size && now_ms() < deadline) {
		json_object *ev = NULL, *devs = NULL;
		r = fm_qmp_wait_event(q, "MEMORY_DEVICE_SIZE_CHANGE", 100, match_id, (void *)id,
				      &ev);
		if (r == 0) {
			size = juint(jget(ev, "data"), "size");
			json_object_put(ev);
			continue;
		}
		if (r != -ETIMEDOUT) {
			err("waiting for the guest: %s", strerror(-r));
			goto out_s;
		}
		if (run(q, "query-memory-devices", "query-memory-devices", NULL, &devs) < 0)
			goto out_s;
		struct vm_state now = { .devices = devs };
		json_object *d = find_device(&now, id, NULL);
		if (d)
			size = juint(d, "size");
		json_object_put(devs);
	}
	if (size == o->size)
		printf("%s: virtio-mem now %s (requested %s, max %s, block %s), after %" PRId64
		       " ms\n", id, fmt_size(size, a, sizeof(a)), fmt_size(o->size, b, sizeof(b)),
		       fmt_size(max, c, sizeof(c)), fmt_size(block, e, sizeof(e)), now_ms() - t0);
	else
		printf("%s: requested %s; the guest has plugged %s so far (is the virtio_mem "
		       "driver loaded in the guest?)\n", id, fmt_size(o->size, a, sizeof(a)),
		       fmt_size(size, b, sizeof(b)));
	state_free(&s);
	if (state_read(q, &s) < 0)
		goto out_q;
	print_summary(&s);
	print_preload_note(q);
	rc = 0;
out_s:
	state_free(&s);
out_q:
	fm_qmp_close(q);
	return rc;
}

/* ---- list --------------------------------------------------------------- */

static json_object *list_json(const struct vm_state *s, int qemu_version, int preload)
{
	json_object *root = json_object_new_object(), *devs = json_object_new_array();
	json_object *bes = json_object_new_array();
	char ver[32];
	snprintf(ver, sizeof(ver), "%d.%d.%d", qemu_version / 10000, qemu_version / 100 % 100,
		 qemu_version % 100);
	json_object_object_add(root, "qemu", json_object_new_string(ver));
	json_object_object_add(root, "fluidmem_preload",
			       preload < 0 ? NULL : json_object_new_boolean(preload));
	json_object_object_add(root, "base_memory",
			       json_object_new_uint64(juint(s->summary, "base-memory")));
	json_object_object_add(root, "plugged_memory",
			       json_object_new_uint64(juint(s->summary, "plugged-memory")));
	for (size_t i = 0; i < json_object_array_length(s->devices); i++) {
		json_object *d = json_object_array_get_idx(s->devices, i), *data = jget(d, "data");
		json_object *o = json_object_new_object();
		const char *t = jstr(d, "type");
		json_object_object_add(o, "id", jget(data, "id") ?
				       json_object_new_string(jstr(data, "id")) : NULL);
		json_object_object_add(o, "type", json_object_new_string(type_name(t)));
		json_object_object_add(o, "size", json_object_new_uint64(juint(data, "size")));
		if (jget(data, "requested-size")) {
			json_object_object_add(o, "requested_size",
					       json_object_new_uint64(juint(data, "requested-size")));
			json_object_object_add(o, "max_size",
					       json_object_new_uint64(juint(data, "max-size")));
			json_object_object_add(o, "block_size",
					       json_object_new_uint64(juint(data, "block-size")));
		}
		uint64_t addr = jget(data, "addr") ? juint(data, "addr") : juint(data, "memaddr");
		json_object_object_add(o, "addr", json_object_new_uint64(addr));
		if (jget(data, "slot"))
			json_object_object_add(o, "slot", json_object_new_int64(jint(data, "slot", -1)));
		json_object_object_add(o, "node", json_object_new_int64(jint(data, "node", 0)));
		json_object_object_add(o, "backend", jget(data, "memdev") ?
				       json_object_new_string(basename_of(jstr(data, "memdev"))) : NULL);
		json_object_array_add(devs, o);
	}
	for (size_t i = 0; i < json_object_array_length(s->memdevs); i++) {
		json_object *m = json_object_array_get_idx(s->memdevs, i);
		const char *mid = jstr(m, "id");
		const char *t = mid ? object_type(s, mid) : NULL;
		const char *user = mid ? backend_user(s, mid) : NULL;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", mid ? json_object_new_string(mid) : NULL);
		json_object_object_add(o, "type", t ? json_object_new_string(t) : NULL);
		json_object_object_add(o, "size", json_object_new_uint64(juint(m, "size")));
		json_object_object_add(o, "share", json_object_new_boolean(
					       json_object_get_boolean(jget(m, "share"))));
		json_object_object_add(o, "used_by", user ? json_object_new_string(user) : NULL);
		json_object_object_add(o, "fluidmem", json_object_new_boolean(
					       preload > 0 && t && strcmp(t, "memory-backend-memfd") == 0));
		json_object_array_add(bes, o);
	}
	json_object_object_add(root, "devices", devs);
	json_object_object_add(root, "backends", bes);
	return root;
}

static int cmd_list(const struct vm_opts *o)
{
	char a[32], b[32];
	struct fm_qmp *q = open_qmp(o);
	if (!q)
		return 1;
	struct vm_state s;
	if (state_read(q, &s) < 0) {
		fm_qmp_close(q);
		return 1;
	}
	int pid, preload = qemu_has_preload(q, &pid);
	json_object *j = list_json(&s, fm_qmp_version(q), preload);
	if (o->json) {
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED));
		goto out;
	}
	const char *ver = jstr(j, "qemu");
	printf("QEMU %s, pid %d, fluidmem preload: %s\n", ver ? ver : "?", pid,
	       preload > 0 ? "yes" : preload == 0 ? "no" : "unknown");
	print_summary(&s);
	json_object *devs = jget(j, "devices"), *bes = jget(j, "backends");
	printf("\n%-12s %-11s %10s %10s %18s %4s %4s  %s\n", "DEVICE", "TYPE", "SIZE", "REQUESTED",
	       "ADDRESS", "SLOT", "NODE", "BACKEND");
	if (json_object_array_length(devs) == 0)
		printf("(no memory devices)\n");
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		json_object *d = json_object_array_get_idx(devs, i);
		char req[32] = "-", slot[16] = "-", addr[24];
		if (jget(d, "requested_size"))
			fmt_size(juint(d, "requested_size"), req, sizeof(req));
		if (jget(d, "slot"))
			snprintf(slot, sizeof(slot), "%" PRId64, jint(d, "slot", -1));
		snprintf(addr, sizeof(addr), "0x%" PRIx64, juint(d, "addr"));
		printf("%-12s %-11s %10s %10s %18s %4s %4" PRId64 "  %s\n",
		       jstr(d, "id") ? jstr(d, "id") : "-", jstr(d, "type") ? jstr(d, "type") : "?",
		       fmt_size(juint(d, "size"), a, sizeof(a)), req, addr, slot, jint(d, "node", 0),
		       jstr(d, "backend") ? jstr(d, "backend") : "-");
	}
	printf("\n%-16s %-24s %10s %5s %-12s %s\n", "BACKEND", "TYPE", "SIZE", "SHARE", "USED-BY",
	       "FLUIDMEM");
	for (size_t i = 0; i < json_object_array_length(bes); i++) {
		json_object *m = json_object_array_get_idx(bes, i);
		printf("%-16s %-24s %10s %5s %-12s %s\n", jstr(m, "id") ? jstr(m, "id") : "-",
		       jstr(m, "type") ? jstr(m, "type") : "?", fmt_size(juint(m, "size"), b, sizeof(b)),
		       json_object_get_boolean(jget(m, "share")) ? "on" : "off",
		       jstr(m, "used_by") ? jstr(m, "used_by") : "-",
		       json_object_get_boolean(jget(m, "fluidmem")) ? "yes" : "no");
	}
out:
	json_object_put(j);
	state_free(&s);
	fm_qmp_close(q);
	return 0;
}

/* ---- unplug ------------------------------------------------------------- */

static int cmd_unplug(const struct vm_opts *o)
{
	char a[32], backend[128] = "";
	if (!o->id) {
		err("--id is required (see 'fluidmem vm list')");
		return 2;
	}
	struct fm_qmp *q = open_qmp(o);
	if (!q)
		return 1;
	struct vm_state s;
	int rc = 1;
	if (state_read(q, &s) < 0)
		goto out_q;
	const char *type = NULL;
	json_object *dev = find_device(&s, o->id, &type);
	if (!dev) {
		err("no memory device '%s' in this VM (see 'fluidmem vm list')", o->id);
		goto out_s;
	}
	if (jstr(dev, "memdev"))
		snprintf(backend, sizeof(backend), "%s", basename_of(jstr(dev, "memdev")));
	uint64_t size = juint(dev, "size");

	int64_t t0 = now_ms();
	json_object *args = json_object_new_object(), *ev = NULL;
	json_object_object_add(args, "id", json_object_new_string(o->id));
	char what[160];
	snprintf(what, sizeof(what), "device_del %s", o->id);
	int r = run(q, what, "device_del", args, NULL);
	json_object_put(args);
	if (r < 0)
		goto out_s;

	/* The guest must offline the memory and eject the DIMM; it reports
	 * progress and refusal with ACPI _OST, completion is DEVICE_DELETED. */
	int64_t deadline = now_ms() + o->timeout_s * 1000;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			err("the guest did not release %s within %d s (Linux gives memory "
			    "back only when it was onlined movable: memhp_default_state="
			    "online_movable; the request stays pending in QEMU)", o->id,
			    o->timeout_s);
			goto out_s;
		}
		r = fm_qmp_wait_event(q, "DEVICE_DELETED", left < 200 ? (int)left : 200,
				      match_device, (void *)o->id, &ev);
		if (r == 0)
			break;
		if (r != -ETIMEDOUT) {
			err("waiting for DEVICE_DELETED: %s", strerror(-r));
			goto out_s;
		}
		json_object *osts = fm_qmp_take_events(q, "ACPI_DEVICE_OST");
		for (size_t i = 0; osts && i < json_object_array_length(osts); i++) {
			json_object *info = jget(jget(json_object_array_get_idx(osts, i), "data"),
						 "info");
			const char *dv = jstr(info, "device");
			int64_t st = jint(info, "status", 0);
			if (!dv || strcmp(dv, o->id) != 0 || st == OST_SUCCESS ||
			    st == OST_EJECT_IN_PROGRESS)
				continue;
			err("the guest refused to release %s (ACPI _OST status 0x%" PRIx64
			    "%s); Linux gives memory back only when it was onlined movable "
			    "(memhp_default_state=online_movable) and is not pinned", o->id, st,
			    st == 0x82 ? ", device busy" : st == 0x81 ? ", device in use" : "");
			json_object_put(osts);
			goto out_s;
		}
		json_object_put(osts);
	}
	json_object_put(ev);
	printf("%s: %s %s unplugged after %" PRId64 " ms\n", o->id, fmt_size(size, a, sizeof(a)),
	       type_name(type), now_ms() - t0);

	if (backend[0] && !o->keep_backend) {
		args = json_object_new_object();
		json_object_object_add(args, "id", json_object_new_string(backend));
		snprintf(what, sizeof(what), "object-del %s", backend);
		r = run(q, what, "object-del", args, NULL);
		json_object_put(args);
		if (r < 0)
			goto out_s;
		printf("backend %s deleted: QEMU unmapped it, so fluidmem drops the region "
		       "and its stored pages\n", backend);
	} else if (backend[0]) {
		printf("backend %s kept (--keep-backend); 'fluidmem vm hotplug' cannot reuse it, "
		       "delete it with QMP object-del\n", backend);
	}
	state_free(&s);
	if (state_read(q, &s) < 0)
		goto out_q;
	print_summary(&s);
	rc = 0;
out_s:
	state_free(&s);
out_q:
	fm_qmp_close(q);
	return rc;
}

/* ---- command line ------------------------------------------------------- */

static const char usage_main[] =
	"usage: fluidmem vm COMMAND --qmp PATH [options]\n"
	"Memory hotplug for QEMU guests running under 'fluidmem run'.\n"
	"\n"
	"commands:\n"
	"  hotplug  add a pc-dimm backed by a new memory-backend-memfd\n"
	"  resize   set the requested-size of the VM's virtio-mem device\n"
	"  list     show the VM's memory devices and memory backends\n"
	"  unplug   remove a DIMM and delete its memory backend\n"
	"\n"
	"'fluidmem vm COMMAND --help' describes each. QEMU must run with a QMP socket:\n"
	"  -qmp unix:PATH,server=on,wait=off\n";

static const char usage_hotplug[] =
	"usage: fluidmem vm hotplug --qmp PATH --size SIZE [--id ID] [--node N]\n"
	"Hotplug SIZE of memory into the guest: QMP object-add memory-backend-memfd\n"
	"id=mem-ID, then device_add pc-dimm id=ID memdev=mem-ID. Waits until QEMU lists\n"
	"the DIMM and (up to --wait-guest seconds) for the guest's ACPI acknowledgement,\n"
	"then prints what the guest got. QEMU needs -m BASE,slots=N,maxmem=MAX.\n"
	"\n"
	"  --qmp PATH          QEMU's QMP Unix socket\n"
	"  --size SIZE         bytes, or with a K/M/G/T suffix (1024-based): 512M, 8G\n"
	"  --id ID             device id (default: the first free fm0, fm1, ...)\n"
	"  --node N            guest NUMA node (default: QEMU's choice, node 0)\n"
	"  --wait-guest SECS   wait for the guest's acknowledgement (default 10; 0: don't)\n"
	"  --timeout SECS      wait for QEMU (default 30)\n";

static const char usage_resize[] =
	"usage: fluidmem vm resize --qmp PATH --size SIZE [--id ID]\n"
	"Set the requested-size of the VM's virtio-mem device (qom-set), and wait up to\n"
	"--wait-guest seconds for the guest driver to plug or unplug memory to match.\n"
	"The VM must have been started with a virtio-mem device, e.g.\n"
	"  -object memory-backend-memfd,id=vmem0,size=16G\n"
	"  -device virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=0\n"
	"\n"
	"  --qmp PATH          QEMU's QMP Unix socket\n"
	"  --size SIZE         the new size, a multiple of the device's block size\n"
	"  --id ID             which virtio-mem device (needed when there are several)\n"
	"  --wait-guest SECS   wait for the guest to follow (default 10; 0: don't)\n"
	"  --timeout SECS      wait for QEMU (default 30)\n";

static const char usage_list[] =
	"usage: fluidmem vm list --qmp PATH [--json]\n"
	"Show the VM's boot and hotplugged memory, its memory devices (pc-dimm,\n"
	"virtio-mem, ...) and its memory backends, and whether QEMU runs with the\n"
	"fluidmem preload library (then every memory-backend-memfd is fluidmem memory).\n"
	"\n"
	"  --qmp PATH          QEMU's QMP Unix socket\n"
	"  --json              machine-readable output\n";

static const char usage_unplug[] =
	"usage: fluidmem vm unplug --qmp PATH --id ID [--keep-backend]\n"
	"Unplug a DIMM: device_del, wait for the guest to release it (DEVICE_DELETED),\n"
	"then object-del its memory backend, which makes fluidmem drop the region and\n"
	"its stored pages. Linux guests release only memory onlined movable\n"
	"(memhp_default_state=online_movable).\n"
	"\n"
	"  --qmp PATH          QEMU's QMP Unix socket\n"
	"  --id ID             the device (see 'fluidmem vm list')\n"
	"  --keep-backend      leave the memory backend in place\n"
	"  --timeout SECS      wait for QEMU and the guest (default 30)\n";

enum { OPT_WAIT_GUEST = 256, OPT_TIMEOUT, OPT_KEEP_BACKEND };

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int fm_cli_vm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "qmp", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "node", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "wait-guest", required_argument, NULL, OPT_WAIT_GUEST },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "keep-backend", no_argument, NULL, OPT_KEEP_BACKEND },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static char name[64];
	struct vm_opts o = { .node = -1, .timeout_s = 30, .guest_wait_s = 10 };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1], *usage;
	int (*fn)(const struct vm_opts *);
	if (strcmp(sub, "hotplug") == 0 || strcmp(sub, "attach") == 0)
		fn = cmd_hotplug, usage = usage_hotplug, sub = "hotplug";
	else if (strcmp(sub, "resize") == 0)
		fn = cmd_resize, usage = usage_resize;
	else if (strcmp(sub, "list") == 0)
		fn = cmd_list, usage = usage_list;
	else if (strcmp(sub, "unplug") == 0 || strcmp(sub, "detach") == 0)
		fn = cmd_unplug, usage = usage_unplug, sub = "unplug";
	else {
		fprintf(stderr, "fluidmem vm: unknown command '%s' (hotplug, resize, list, unplug)\n",
			sub);
		return 2;
	}
	snprintf(name, sizeof(name), "fluidmem vm %s", sub);
	cmd_name = "fluidmem vm";

	optind = 0;	/* re-initialise getopt: main may have used it */
	opterr = 0;
	int c;
	const char *size_arg = NULL;
	int ac = argc - 1;
	char **av = argv + 1;	/* av[0] is the subcommand */
	while ((c = getopt_long(ac, av, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': o.qmp = optarg; break;
		case 's': size_arg = optarg; break;
		case 'i': o.id = optarg; break;
		case 'j': o.json = true; break;
		case OPT_KEEP_BACKEND: o.keep_backend = true; break;
		case 'n':
			if (parse_int(optarg, 0, 4095, &o.node) < 0) {
				fprintf(stderr, "%s: --node: '%s' is not a NUMA node number\n", name, optarg);
				return 2;
			}
			break;
		case OPT_WAIT_GUEST:
		case OPT_TIMEOUT:
			if (parse_int(optarg, 0, 86400, c == OPT_TIMEOUT ? &o.timeout_s
								    : &o.guest_wait_s) < 0) {
				fprintf(stderr, "%s: %s: '%s' is not a number of seconds\n", name,
					c == OPT_TIMEOUT ? "--timeout" : "--wait-guest", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fprintf(stderr, "%s: %s option '%s' (see --help)\n", name,
				optopt ? "missing argument to" : "unknown", av[optind - 1]);
			return 2;
		}
	}
	if (optind < ac) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", name, av[optind]);
		return 2;
	}
	if (!o.qmp)
		o.qmp = getenv("FLUIDMEM_QMP");
	if (!o.qmp) {
		fprintf(stderr, "%s: --qmp PATH is required (QEMU's -qmp unix:PATH socket)\n", name);
		return 2;
	}
	if (o.timeout_s == 0)
		o.timeout_s = 1;
	if (size_arg) {
		o.has_size = true;
		if (fm_parse_size(size_arg, &o.size) < 0) {
			fprintf(stderr, "%s: --size: '%s' is not a size (use e.g. 512M, 8G, 1T)\n",
				name, size_arg);
			return 2;
		}
	}
	cmd_name = name;
	return fn(&o);
}
