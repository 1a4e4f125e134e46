/* harness.h on bare-metal Arm under QEMU: console and exit through Arm
 * semihosting (bkpt 0xAB), the instruction clock from SysTick. */
#include <stdint.h>

#include "harness.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SYST_CSR_ENABLE_TICKINT_CPUCLK 0x7u
#define ICSR_PENDSTSET (1u << 26)
#define SYSTICK_MASK 0xFFFFFFu /* the counter is 24 bits */

static uint32_t semihost(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void harness_write(const char *text)
{
    (void)semihost(SYS_WRITE0, text);
}

void harness_exit(int status)
{
    /* SYS_EXIT_EXTENDED, unlike SYS_EXIT on AArch32, carries the status to QEMU's exit code. */
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

void harness_clock_start(void)
{
    SYST_RVR = SYSTICK_MASK;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE_TICKINT_CPUCLK;
}

uint32_t harness_clock_ticks(void)
{
    uint32_t wraps, value;
    /* With interrupts off, a wrap not yet counted by the handler shows as a
     * pending SysTick; the count then is the value read after seeing it. */
    __asm__ volatile("cpsid i" ::: "memory");
    value = SYST_CVR;
    wraps = systick_wraps;
    if ((SCB_ICSR & ICSR_PENDSTSET) != 0u) {
        value = SYST_CVR;
        wraps++;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    /* The exception pends as the counter reaches 0, so 0 starts a period:
     * phase = (0 - value) mod 2^24 grows by one every tick. */
    return (wraps << 24) + ((0u - value) & SYSTICK_MASK);
}
