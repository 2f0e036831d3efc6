/*
 * Entry point for chronicorn bare-metal RISC-V test guests.
 *
 * Boot contract (QEMU virt, -bios none -kernel guest.elf):
 *   a0 = hart id, a1 = FDT pointer, pc = 0x80000000.
 * Only hart 0 runs; any other hart parks in a wfi loop.
 */
#define STACK_SIZE 16384

    .section .text.init, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    /* No trap handler unless the guest installs one. */
    csrw    mtvec, zero
    csrw    mie, zero

    bnez    a0, .Lpark

    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop

    la      sp, __stack_top

    /* Zero .bss (start/end are 16-byte aligned by the linker script). */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:
    /* main(hartid, fdt); a0/a1 are still the values passed at reset. */
    call    main
    /* Exit with main's return value. guest_exit does not return. */
    call    guest_exit

.Lpark:
    wfi
    j       .Lpark
    .size _start, . - _start

    .section .bss.stack, "aw", @nobits
    .balign 16
    .globl __stack_bottom
__stack_bottom:
    .space  STACK_SIZE
    .globl __stack_top
__stack_top:
