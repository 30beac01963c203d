/*
 * vm.h - `fluidmem vm ...`: memory hotplug for QEMU virtual machines, spoken
 * over QMP (see qmp.h). The memory itself becomes fluidmem memory because QEMU
 * runs under `fluidmem run` and the preload library registers every mapping
 * of a memory-backend-memfd; this command only asks QEMU for the backend and
 * the device, and reports what the guest got. docs/vm.md is the manual.
 */
#ifndef FM_CLI_VM_H
#define FM_CLI_VM_H

/* Entry point from src/cli/main.c; argv[0] is "vm". Prints its own messages
 * (results on stdout, one-line errors on stderr) and returns the process
 * exit status: 0 success, 1 failure, 2 usage error. */
int fm_cli_vm(int argc, char **argv);

#endif
