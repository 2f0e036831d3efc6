/* PSCI calls through `hvc #0` (QEMU virt's conduit without EL2/EL3). */
#ifndef GUEST_PSCI_H
#define GUEST_PSCI_H

#include <stdint.h>

uint64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
void psci_system_off(void) __attribute__((noreturn));     /* QEMU exits, status 0 */
void psci_system_reset(void) __attribute__((noreturn));

#endif
