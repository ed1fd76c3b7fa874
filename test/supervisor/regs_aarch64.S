/* aarch64 counterpart of regs_x86_64.S: x0-x30 but x16 zero (x16, the veneer scratch register, holds the
 * target after the hook), NZCV clear, sp 16-byte aligned and pointing at argc (1). Exit status 0 when all
 * holds, else which check failed. */
        .globl _start
        .text
_start:
        mrs     x16, nzcv
        orr     x17, x17, x0
        orr     x17, x17, x1
        orr     x17, x17, x2
        orr     x17, x17, x3
        orr     x17, x17, x4
        orr     x17, x17, x5
        orr     x17, x17, x6
        orr     x17, x17, x7
        orr     x17, x17, x8
        orr     x17, x17, x9
        orr     x17, x17, x10
        orr     x17, x17, x11
        orr     x17, x17, x12
        orr     x17, x17, x13
        orr     x17, x17, x14
        orr     x17, x17, x15
        orr     x17, x17, x18
        orr     x17, x17, x19
        orr     x17, x17, x20
        orr     x17, x17, x21
        orr     x17, x17, x22
        orr     x17, x17, x23
        orr     x17, x17, x24
        orr     x17, x17, x25
        orr     x17, x17, x26
        orr     x17, x17, x27
        orr     x17, x17, x28
        orr     x17, x17, x29
        orr     x17, x17, x30
        mov     x0, #1
        cbnz    x17, 1f
        mov     x0, #2
        mov     x1, sp
        tst     x1, #15
        b.ne    1f
        mov     x0, #3
        ldr     x1, [sp]
        cmp     x1, #1
        b.ne    1f
        mov     x0, #4
        cbnz    x16, 1f
        mov     x0, #0
1:      mov     x8, #94         /* exit_group */
        svc     #0
