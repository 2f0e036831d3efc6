/*
 * dump: print s1..s9 on the UART (NS16550A THR at 0x10000000), each as 8
 * lowercase hex digits and a newline, then exit through the SiFive test
 * finisher (0x5555 -> pass). Linked after every probe; probes end with
 * `j dump`. Clobbers a0-a5, t0, t1, t6.
 */
    .text
    .balign 4
    .globl dump
dump:
    la a4, saved
    sw s1, 0(a4)
    sw s2, 4(a4)
    sw s3, 8(a4)
    sw s4, 12(a4)
    sw s5, 16(a4)
    sw s6, 20(a4)
    sw s7, 24(a4)
    sw s8, 28(a4)
    sw s9, 32(a4)
    li a5, 9
    li a2, 0x10000000
dl: lw a0, 0(a4)
    li a3, 28
dn: srl a1, a0, a3
    andi a1, a1, 15
    li t6, 10
    blt a1, t6, dd
    addi a1, a1, 39                 // 'a' - '0' - 10
dd: addi a1, a1, 48                 // '0'
    sb a1, 0(a2)
    addi a3, a3, -4
    bgez a3, dn
    li a1, 10
    sb a1, 0(a2)
    addi a4, a4, 4
    addi a5, a5, -1
    bnez a5, dl
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b

    .data
    .balign 4
saved: .space 64
