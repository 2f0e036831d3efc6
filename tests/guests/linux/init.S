# /init for chronicorn's minimal Linux guest: a static RISC-V 64 program
# using raw Linux syscalls (no libc).  Assembled with riscv64-linux-gnu-as
# and linked with `riscv64-linux-gnu-ld -static --no-relax` (no gp setup
# is needed because nothing is relaxed to gp-relative addressing).
#
# Output (on fd 1 = /dev/console, which the kernel opens for init):
#
#   chronicorn-linux: init is running
#   chronicorn-linux: uname machine=riscv64
#   chronicorn-linux: sum(1..1000)=500500
#   chronicorn-linux: nanosleep(20ms) advanced CLOCK_MONOTONIC by >= 20ms: ok
#   chronicorn-linux: powering off
#
# Every line is deterministic: the clock check prints only "ok" or "FAIL",
# never the time itself.  Then it calls reboot(POWER_OFF), which the kernel
# turns into an SBI SRST shutdown, so QEMU exits.

        .equ    SYS_write,          64
        .equ    SYS_exit,           93
        .equ    SYS_nanosleep,     101
        .equ    SYS_clock_gettime, 113
        .equ    SYS_reboot,        142
        .equ    SYS_uname,         160

        .equ    CLOCK_MONOTONIC,     1
        .equ    UTS_LEN,            65          # struct new_utsname field size
        .equ    UTS_MACHINE,   4 * UTS_LEN      # sysname nodename release version machine

        .equ    LINUX_REBOOT_MAGIC1,    0xfee1dead
        .equ    LINUX_REBOOT_MAGIC2,    672274793       # 0x28121969
        .equ    LINUX_REBOOT_CMD_POWER_OFF, 0x4321fedc

        .equ    SLEEP_NS,       20000000                # 20 ms

        .text
        .globl  _start
_start:
        la      a0, msg_hello
        call    puts

        # --- uname(2): print the machine field --------------------------------
        la      a0, uts
        li      a7, SYS_uname
        ecall
        bnez    a0, fail
        la      a0, msg_machine
        call    puts
        la      a0, uts + UTS_MACHINE
        call    puts
        la      a0, msg_nl
        call    puts

        # --- something computed: 1 + 2 + ... + 1000 ---------------------------
        li      s0, 0
        li      s1, 1000
1:      add     s0, s0, s1
        addi    s1, s1, -1
        bnez    s1, 1b
        la      a0, msg_sum
        call    puts
        mv      a0, s0
        call    putu
        la      a0, msg_nl
        call    puts

        # --- time advances: t1 - t0 >= 20 ms around nanosleep(20 ms) -----------
        li      a0, CLOCK_MONOTONIC
        la      a1, ts0
        li      a7, SYS_clock_gettime
        ecall
        bnez    a0, fail
        la      a0, sleep_req
        li      a1, 0
        li      a7, SYS_nanosleep
        ecall
        bnez    a0, fail
        li      a0, CLOCK_MONOTONIC
        la      a1, ts1
        li      a7, SYS_clock_gettime
        ecall
        bnez    a0, fail

        la      t0, ts0
        ld      t1, 0(t0)               # t0.tv_sec
        ld      t2, 8(t0)               # t0.tv_nsec
        la      t0, ts1
        ld      t3, 0(t0)               # t1.tv_sec
        ld      t4, 8(t0)               # t1.tv_nsec
        sub     t3, t3, t1
        li      t5, 1000000000
        mul     t3, t3, t5
        sub     t4, t4, t2
        add     s2, t3, t4              # elapsed ns
        la      a0, msg_clock
        call    puts
        li      t0, SLEEP_NS
        la      a0, msg_ok
        bge     s2, t0, 2f
        la      a0, msg_fail
2:      call    puts

        # --- power off -------------------------------------------------------
        la      a0, msg_off
        call    puts
        li      a0, LINUX_REBOOT_MAGIC1
        li      a1, LINUX_REBOOT_MAGIC2
        li      a2, LINUX_REBOOT_CMD_POWER_OFF
        li      a3, 0
        li      a7, SYS_reboot
        ecall
        # reboot() only returns on failure.
fail:
        la      a0, msg_error
        call    puts
        li      a0, 1
        li      a7, SYS_exit
        ecall
3:      j       3b

# puts(a0 = NUL-terminated string): write(1, s, strlen(s)).
# Clobbers a0-a2, a7, t0.
puts:
        mv      a1, a0
        mv      t0, a0
1:      lbu     a2, 0(t0)
        beqz    a2, 2f
        addi    t0, t0, 1
        j       1b
2:      sub     a2, t0, a1
        li      a0, 1
        li      a7, SYS_write
        ecall
        ret

# putu(a0 = unsigned value): print it in decimal.  Clobbers a0-a2, a7, t0-t2.
putu:
        la      t0, numbuf_end
        sb      zero, 0(t0)             # NUL terminator
        li      t1, 10
1:      remu    t2, a0, t1
        divu    a0, a0, t1
        addi    t2, t2, '0'
        addi    t0, t0, -1
        sb      t2, 0(t0)
        bnez    a0, 1b
        mv      a0, t0
        j       puts                    # tail call

        .section .rodata
msg_hello:   .asciz "chronicorn-linux: init is running\n"
msg_machine: .asciz "chronicorn-linux: uname machine="
msg_sum:     .asciz "chronicorn-linux: sum(1..1000)="
msg_clock:   .asciz "chronicorn-linux: nanosleep(20ms) advanced CLOCK_MONOTONIC by >= 20ms: "
msg_ok:      .asciz "ok\n"
msg_fail:    .asciz "FAIL\n"
msg_off:     .asciz "chronicorn-linux: powering off\n"
msg_error:   .asciz "chronicorn-linux: syscall failed\n"
msg_nl:      .asciz "\n"

        .balign 8
sleep_req:   .dword 0, SLEEP_NS          # struct timespec { 0 s, 20 ms }

        .bss
        .balign 8
ts0:    .space  16
ts1:    .space  16
uts:    .space  6 * UTS_LEN
numbuf: .space  24
numbuf_end:
        .space  1
