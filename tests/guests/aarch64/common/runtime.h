/* Runtime shared by the guests: exit and the exception dispatch. */
#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H

/* Power off through PSCI SYSTEM_OFF. QEMU exits with status 0 whatever the
 * code: a non-zero code is printed first ("exit code N"). */
void guest_exit(int code) __attribute__((noreturn));

#endif
