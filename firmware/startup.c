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

/* Read by the hardware only, hence the cppcheck suppressions. */
struct vector_table {
    /* cppcheck-suppress unusedStructMember */
    uint32_t *stack_top;
    /* cppcheck-suppress unusedStructMember */
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
    /* Sizes through uintptr_t: comparing pointers to different linker symbols is undefined in C. */
    uintptr_t data_words = ((uintptr_t)_edata - (uintptr_t)_sdata) / sizeof(uint32_t);
    uintptr_t bss_words = ((uintptr_t)_ebss - (uintptr_t)_sbss) / sizeof(uint32_t);
    uintptr_t i;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10/CP11 full access (CPACR): FP, and MVE on the M55, fault until enabled.
     * The barriers make the next instruction see it. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (i = 0; i < data_words; i++) {
        _sdata[i] = _sidata[i];
    }
    for (i = 0; i < bss_words; i++) {
        _sbss[i] = 0u;
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
