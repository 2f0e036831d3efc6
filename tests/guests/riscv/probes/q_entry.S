/*
 * q_entry: the register state QEMU's reset vector (MROM at 0x1000) hands to
 * the kernel with `-bios none -kernel X -m 128M`: t0 = entry, a1 = FDT,
 * a2 = fw_dynamic_info (its first word is the magic "OSBI" = 0x4942534f).
 *
 *   s1  t0 at entry (0x80000000)
 *   s2  a2 at entry (address of fw_dynamic_info in MROM)
 *   s3  a1 at entry (FDT address)
 *   s4  fw_dynamic_info.magic (0xdead if a2 was 0)
 *   s5  first reset-vector word in MROM (auipc t0, 0)
 *   s6  mcause if a read trapped (0)
 */
    .section .text.init
    .globl _start
_start:
    mv s1, t0
    mv s2, a2
    mv s3, a1
    la t0, trap
    csrw mtvec, t0
    li s4, 0xdead
    beqz s2, 1f
    lw s4, 0(s2)
1:  li t0, 0x1000
    lw s5, 0(t0)
    j dump

    .balign 4
trap:
    csrr s6, mcause
    j dump
