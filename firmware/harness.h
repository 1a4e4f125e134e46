/* What the shared harness (harness.c) needs from the machine it runs on.
 * platform_host.c implements it with stdio, semihost.c with Arm semihosting. */
#ifndef MCUGEN_HARNESS_H
#define MCUGEN_HARNESS_H

#include <stdint.h>

/* Exit statuses, as the process (host) or QEMU (through SYS_EXIT_EXTENDED) reports them. */
#define HARNESS_EXIT_OK 0
#define HARNESS_EXIT_MODEL_ERROR 1
#define HARNESS_EXIT_FAULT 3

/* Writes a NUL-terminated string to the console, unbuffered on Arm. */
void harness_write(const char *text);

/* Starts the instruction clock; called once before the first inference. */
void harness_clock_start(void);

/* Clock ticks since harness_clock_start, modulo 2^32 (differences stay right
 * across the wrap). Arm: SysTick on the processor clock, so under QEMU -icount
 * shift=0 one tick is 1e9 / clock_hz instructions. */
uint32_t harness_clock_ticks(void);

/* Arm only: ends the program, reporting `status` as QEMU's exit code. The
 * startup code calls it with main's result. */
void harness_exit(int status) __attribute__((noreturn));

#endif
