/*
 * kimage: a minimal arm64 Linux-format Image (the 64-byte header U-Boot's booti checks), for the two-image boot
 * test: U-Boot as -bios loads it through fw_cfg (QEMU's -kernel next to -bios) and boots it. It prints one line,
 * says whether x0 points at a device tree (its big-endian magic 0xd00dfeed), and powers off (PSCI SYSTEM_OFF).
 */
    .section .text
    .globl _start
_start:
    b       code                        /* code0 */
    .long   0                           /* code1 */
    .quad   0x80000                     /* text_offset: booti moves the Image to RAM base + 0x80000 */
    .quad   image_end - _start          /* image_size */
    .quad   0x2                         /* flags: little-endian, 4K pages */
    .quad   0, 0, 0                     /* res2-res4 */
    .ascii  "ARM\x64"                   /* magic */
    .long   0                           /* res5 */
code:
    mov     x20, x0
    adr     x1, started
    bl      puts
    ldr     w3, [x20]
    rev     w3, w3
    ldr     w4, =0xd00dfeed
    adr     x1, fdt_yes
    cmp     w3, w4
    b.eq    1f
    adr     x1, fdt_no
1:  bl      puts
2:  ldr     x0, =0x84000008             /* PSCI SYSTEM_OFF */
    hvc     #0
    b       2b

puts:                                   /* x1: a NUL-terminated string, to the PL011 */
    ldr     x2, =0x09000000
1:  ldrb    w3, [x1], #1
    cbz     w3, 3f
2:  ldr     w4, [x2, #0x18]             /* UARTFR: wait while TXFF */
    tbnz    w4, #5, 2b
    str     w3, [x2]
    b       1b
3:  ret

started:
    .asciz  "kimage: started\n"
fdt_yes:
    .asciz  "kimage: x0 points at a device tree\n"
fdt_no:
    .asciz  "kimage: no device tree in x0\n"
    .balign 8
    .ltorg
image_end:
