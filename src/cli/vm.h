/*
 * vm.h - `fluidmem vm ...`: memory hotplug for QEMU virtual machines, spoken
 * over QMP (see qmp.h). The memory itself becomes fluidmem memory because QEMU
 * runs under `fluidmem run` and the preload library registers every mapping
 * of a memory-backend-memfd; this command only asks QEMU for the backend and
 * the device, and reports what the guest got. docs/vm.md is the manual.
 */
#ifndef FM_CLI_VM_H
#define FM_CLI_VM_H

#include <stdint.h>

/* Entry point from src/cli/main.c; argv[0] is "vm". Prints its own messages
 * (results on stdout, one-line errors on stderr) and returns the process
 * exit status: 0 success, 1 failure, 2 usage error. */
int fm_cli_vm(int argc, char **argv);

/* Parse a size such as "512M", "8G", "8GiB", "1T" or "1048576" (bytes) into
 * bytes; K/M/G/T (and KiB/MiB/GiB/TiB, any case, optional B) are powers of
 * 1024. Returns 0 or -EINVAL (not a size) / -ERANGE (overflows 64 bits). */
int fm_vm_parse_size(const char *s, uint64_t *bytes);

#endif
