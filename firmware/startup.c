/* Vector table and reset handler for the QEMU Arm boards. The linker scripts
 * in ld/ provide the symbols below and place .vectors at the boot address. */
#include <stdint.h>

#include "harness.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));
void SysTick_Handler(void);

typedef void (*handler_fn)(void);

struct vector_table {
    uint32_t *stack_top;
    handler_fn handlers[15];
};

__attribute__((section(".vectors"), used)) static const struct vector_table vectors = {
    _estack,
    {
        Reset_Handler,
        Fault_Handler, /* NMI */
        Fault_Handler, /* HardFault */
        Fault_Handler, /* MemManage */
        Fault_Handler, /* BusFault */
        Fault_Handler, /* UsageFault */
        Fault_Handler, /* SecureFault (v8-M) */
        0,
        0,
        0,
        Fault_Handler, /* SVCall */
        Fault_Handler, /* DebugMonitor */
        0,
        Fault_Handler, /* PendSV */
        SysTick_Handler,
    },
};

void Reset_Handler(void)
{
    const uint32_t *source = _sidata;
    uint32_t *target;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10/CP11 full access (CPACR): FP, and MVE on the M55, fault until enabled.
     * The barriers make the next instruction see it. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (target = _sdata; target < _edata; target++) {
        *target = *source++;
    }
    for (target = _sbss; target < _ebss; target++) {
        *target = 0u;
    }
    harness_exit(main());
}

void Fault_Handler(void)
{
    /* "fault <exception number>" so a crash is told apart from a wrong answer. */
    char text[] = "fault 000\n";
    uint32_t exception;
    __asm__ volatile("mrs %0, ipsr" : "=r"(exception));
    exception &= 0x1FFu;
    text[6] = (char)('0' + (int)(exception / 100u % 10u));
    text[7] = (char)('0' + (int)(exception / 10u % 10u));
    text[8] = (char)('0' + (int)(exception % 10u));
    harness_write(text);
    harness_exit(HARNESS_EXIT_FAULT);
}
