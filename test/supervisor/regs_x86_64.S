/* A static program without libc that checks what the kernel promises at entry: every general register
 * but rsp zero, no arithmetic flag or DF set, rsp 16-byte aligned and pointing at argc (1). Exit status 0
 * when all holds, else which check failed; a hooked copy must exit 0 too (the hook restores everything). */
        .globl _start
        .text
_start:
        pushfq                  /* the flags, before anything changes them */
        orq     %rbx, %rax
        orq     %rcx, %rax
        orq     %rdx, %rax
        orq     %rsi, %rax
        orq     %rdi, %rax
        orq     %rbp, %rax
        orq     %r8, %rax
        orq     %r9, %rax
        orq     %r10, %rax
        orq     %r11, %rax
        orq     %r12, %rax
        orq     %r13, %rax
        orq     %r14, %rax
        orq     %r15, %rax
        popq    %rbx
        movl    $1, %edi
        testq   %rax, %rax
        jnz     1f
        movl    $2, %edi
        testq   $15, %rsp
        jnz     1f
        movl    $3, %edi
        cmpq    $1, (%rsp)
        jne     1f
        movl    $4, %edi
        andq    $0xcd5, %rbx    /* CF PF AF ZF SF DF OF */
        jnz     1f
        xorl    %edi, %edi
1:      movl    $231, %eax      /* exit_group */
        syscall
