/*
 * mambapatch supervisor blob (method `supervise`): carried in a static executable as a new R+X PT_LOAD
 * whose first byte is the header below; e_entry points at mambapatch_hook_entry. Freestanding: raw system
 * calls, no libc, no writable data, no relocations (the build links it twice at different addresses and
 * requires identical bytes), stack only.
 *
 * At start, in the program's process before its libc runs, unless it is root (or has CAP_FOWNER):
 *   check the kernel (user notification, CONTINUE, POLLHUP on an unused filter: 5.8), all before
 *   no_new_privs; fork twice (the supervisor is a grandchild: the program never finds a stray child,
 *   and the intermediate child tells the supervisor's pid); the supervisor leaves the session, ignores
 *   the terminal signals and keeps only its socket; the program names it its ptracer (Yama), sets no_new_privs, installs a filter that notifies on
 *   chmod, fchmod, fchmodat, fchmodat2, utime, utimes, futimesat, utimensat (those the architecture has)
 *   and allows everything else, sends the listener (SCM_RIGHTS), closes it, and jumps to the original
 *   entry with every register as the kernel left it. Any failure: everything closed, the program runs
 *   unpatched; MAMBAPATCH_DEBUG=1 prints one line saying why. EBUSY (a hooked ancestor's listener is in
 *   the chain): that ancestor's supervisor serves this process too.
 * The supervisor decides with the shim's rules (templates/rules/mambapatch_rules.h): the owner's calls,
 * and anything it cannot inspect, continue untouched; a refused chmod that changes nothing is answered
 * with success; a refused explicit near-now time is done as a touch to now. It exits when the listener
 * reports that no filtered task is left.
 *
 * The header's delta slot is 0 here; `elf add-entry-hook` writes it.
 */
#include <asm/unistd.h>
#include <asm/stat.h>
#include <asm/statfs.h>
#include <linux/audit.h>
#include <linux/fcntl.h>
#include <linux/filter.h>
#include <linux/ioctl.h>
#include <linux/seccomp.h>

#include "../rules/mambapatch_rules.h"

#ifndef MAMBAPATCH_VERSION
#define MAMBAPATCH_VERSION "0.0.0-dev"
#endif

#if defined(__x86_64__)
#define MP_ARCH "x86_64"
#define MP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MP_ARCH "aarch64"
#define MP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MP_ARCH "ppc64le"
#define MP_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#else
#error "mambapatch hook: unsupported architecture (x86_64, aarch64, ppc64le)"
#endif

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

/* ------------------------------------------------------------------------ header and entry stubs */

#define MP_HEADER                                                                                      \
  ".section .hook.head,\"ax\"\n"                                                                       \
  ".balign 16\n"                                                                                       \
  "mp_hook_start:\n"                                                                                   \
  ".ascii \"MAMBAPATCH-HOOK\\0\"\n"                    /*  0: magic */                                 \
  ".long 1\n"                                          /* 16: ABI version */                           \
  ".long mambapatch_hook_entry - mp_hook_start\n"      /* 20: entry offset */                          \
  ".quad 0\n"                                          /* 24: original entry - blob start */           \
  ".long 0\n"                                          /* 32: total size (written by the build) */     \
  ".long 0\n"                                          /* 36: reserved */                              \
  ".ascii \"mambapatch-hook version=" MAMBAPATCH_VERSION " arch=" MP_ARCH "\"\n"                       \
  ".org mp_hook_start + 104, 0\n"                      /* 40..103: id, NUL-padded */                   \
  ".balign 16\n"                                                                                       \
  ".globl mambapatch_hook_entry\n"                                                                     \
  ".type mambapatch_hook_entry, %function\n"                                                           \
  "mambapatch_hook_entry:\n"

#if defined(__x86_64__)
/* Every register and the flags are restored; the jump goes through the slot just below the stack. */
__asm__(MP_HEADER
        "  lea -8(%rsp), %rsp\n" /* slot for the target, at original rsp - 8 (lea: flags untouched) */
        "  pushfq\n"
        "  push %rax\n  push %rbx\n  push %rcx\n  push %rdx\n  push %rsi\n  push %rdi\n  push %rbp\n"
        "  push %r8\n  push %r9\n  push %r10\n  push %r11\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
        "  lea 136(%rsp), %rdi\n" /* the original stack pointer: argc */
        "  mov %rsp, %rbp\n"
        "  and $-16, %rsp\n"
        "  call mp_hook_main\n"
        "  mov %rbp, %rsp\n"
        "  lea mp_hook_start(%rip), %rax\n"
        "  add mp_hook_start+24(%rip), %rax\n"
        "  mov %rax, 128(%rsp)\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %r11\n  pop %r10\n  pop %r9\n  pop %r8\n"
        "  pop %rbp\n  pop %rdi\n  pop %rsi\n  pop %rdx\n  pop %rcx\n  pop %rbx\n  pop %rax\n"
        "  popfq\n"
        "  lea 8(%rsp), %rsp\n" /* lea: the flags stay as restored */
        "  jmp *-8(%rsp)\n"
        ".text\n");
#elif defined(__aarch64__)
/* Every register but x16 (IP0, the AAPCS64 veneer scratch register) is restored; x16 holds the target. */
__asm__(MP_HEADER
        "  sub sp, sp, #256\n"
        "  stp x0, x1, [sp, #0]\n  stp x2, x3, [sp, #16]\n  stp x4, x5, [sp, #32]\n  stp x6, x7, [sp, #48]\n"
        "  stp x8, x9, [sp, #64]\n  stp x10, x11, [sp, #80]\n  stp x12, x13, [sp, #96]\n  stp x14, x15, [sp, #112]\n"
        "  stp x16, x17, [sp, #128]\n  stp x18, x19, [sp, #144]\n  stp x20, x21, [sp, #160]\n  stp x22, x23, [sp, #176]\n"
        "  stp x24, x25, [sp, #192]\n  stp x26, x27, [sp, #208]\n  stp x28, x29, [sp, #224]\n"
        "  mrs x9, nzcv\n  stp x30, x9, [sp, #240]\n"
        "  add x0, sp, #256\n"
        "  bl mp_hook_main\n"
        "  ldp x30, x9, [sp, #240]\n  msr nzcv, x9\n"
        "  ldp x0, x1, [sp, #0]\n  ldp x2, x3, [sp, #16]\n  ldp x4, x5, [sp, #32]\n  ldp x6, x7, [sp, #48]\n"
        "  ldp x8, x9, [sp, #64]\n  ldp x10, x11, [sp, #80]\n  ldp x12, x13, [sp, #96]\n  ldp x14, x15, [sp, #112]\n"
        "  ldp x18, x19, [sp, #144]\n  ldp x20, x21, [sp, #160]\n  ldp x22, x23, [sp, #176]\n"
        "  ldp x24, x25, [sp, #192]\n  ldp x26, x27, [sp, #208]\n  ldp x28, x29, [sp, #224]\n"
        "  adr x16, mp_hook_start\n"
        "  ldr x17, [x16, #24]\n"
        "  add x16, x16, x17\n"
        "  ldr x17, [sp, #136]\n"
        "  add sp, sp, #256\n"
        "  br x16\n"
        ".text\n");
#elif defined(__powerpc64__)
/* ELFv2: our own TOC for the C code; every GPR, LR, CR and XER restored; r12 = CTR = the target, as the
 * kernel sets r12 = entry for a global entry point. Frame: 32-byte header, then r0..r31, LR, CR, XER. */
__asm__(MP_HEADER
        "  stdu 1, -320(1)\n"
        "  std 0, 32(1)\n  std 2, 48(1)\n  std 3, 56(1)\n  std 4, 64(1)\n  std 5, 72(1)\n  std 6, 80(1)\n"
        "  std 7, 88(1)\n  std 8, 96(1)\n  std 9, 104(1)\n  std 10, 112(1)\n  std 11, 120(1)\n  std 12, 128(1)\n"
        "  std 13, 136(1)\n  std 14, 144(1)\n  std 15, 152(1)\n  std 16, 160(1)\n  std 17, 168(1)\n  std 18, 176(1)\n"
        "  std 19, 184(1)\n  std 20, 192(1)\n  std 21, 200(1)\n  std 22, 208(1)\n  std 23, 216(1)\n  std 24, 224(1)\n"
        "  std 25, 232(1)\n  std 26, 240(1)\n  std 27, 248(1)\n  std 28, 256(1)\n  std 29, 264(1)\n  std 30, 272(1)\n"
        "  std 31, 280(1)\n"
        "  mflr 0\n  std 0, 288(1)\n  mfcr 0\n  std 0, 296(1)\n  mfxer 0\n  std 0, 304(1)\n"
        "  bcl 20, 31, 1f\n"
        "1: mflr 11\n"
        "  addis 2, 11, (.TOC. - 1b)@ha\n"
        "  addi 2, 2, (.TOC. - 1b)@l\n"
        "  addi 3, 1, 320\n" /* the original stack pointer */
        "  addi 4, 1, 32\n"  /* the saved registers (argc/argv/envp in r3-r5 after ld.so) */
        "  bl mp_hook_main\n"
        "  nop\n"
        "  bcl 20, 31, 2f\n"
        "2: mflr 12\n"
        "  addis 12, 12, (mp_hook_start - 2b)@ha\n"
        "  addi 12, 12, (mp_hook_start - 2b)@l\n"
        "  ld 0, 24(12)\n"
        "  add 12, 12, 0\n"
        "  mtctr 12\n"
        "  ld 0, 288(1)\n  mtlr 0\n  ld 0, 296(1)\n  mtcrf 0xff, 0\n  ld 0, 304(1)\n  mtxer 0\n"
        "  ld 0, 32(1)\n  ld 2, 48(1)\n  ld 3, 56(1)\n  ld 4, 64(1)\n  ld 5, 72(1)\n  ld 6, 80(1)\n"
        "  ld 7, 88(1)\n  ld 8, 96(1)\n  ld 9, 104(1)\n  ld 10, 112(1)\n  ld 11, 120(1)\n"
        "  ld 13, 136(1)\n  ld 14, 144(1)\n  ld 15, 152(1)\n  ld 16, 160(1)\n  ld 17, 168(1)\n  ld 18, 176(1)\n"
        "  ld 19, 184(1)\n  ld 20, 192(1)\n  ld 21, 200(1)\n  ld 22, 208(1)\n  ld 23, 216(1)\n  ld 24, 224(1)\n"
        "  ld 25, 232(1)\n  ld 26, 240(1)\n  ld 27, 248(1)\n  ld 28, 256(1)\n  ld 29, 264(1)\n  ld 30, 272(1)\n"
        "  ld 31, 280(1)\n"
        "  addi 1, 1, 320\n"
        "  bctr\n"
        ".text\n");
#endif

/* ------------------------------------------------------------------------------ raw system calls */

#if defined(__x86_64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
  return x0;
}
#elif defined(__powerpc64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long r0 __asm__("r0") = n, r3 __asm__("r3") = a, r4 __asm__("r4") = b, r5 __asm__("r5") = c;
  register long r6 __asm__("r6") = d, r7 __asm__("r7") = e, r8 __asm__("r8") = f;
  __asm__ volatile("sc\n\tbns+ 1f\n\tneg %1, %1\n1:"
                   : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8)
                   :
                   : "r9", "r10", "r11", "r12", "cr0", "ctr", "xer", "memory");
  return r3;
}
#endif

#define SC0(n) sc6(n, 0, 0, 0, 0, 0, 0)
#define SC1(n, a) sc6(n, (long)(a), 0, 0, 0, 0, 0)
#define SC2(n, a, b) sc6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define SC3(n, a, b, c) sc6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SC4(n, a, b, c, d) sc6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define SC5(n, a, b, c, d, e) sc6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Constants the uapi headers leave to libc. */
#define MP_EINTR 4
#define MP_ENOENT 2
#define MP_EBUSY 16
#define MP_EINVAL 22
#define MP_EFAULT 14
#define MP_ENOSYS 38
#define MP_SIGCHLD 17
#define MP_AF_UNIX 1
#define MP_SOCK_STREAM 1
#define MP_SOCK_CLOEXEC 02000000
#define MP_SOL_SOCKET 1
#define MP_SCM_RIGHTS 1
#define MP_MSG_CMSG_CLOEXEC 0x40000000
#define MP_POLLIN 0x1
#define MP_POLLHUP 0x10
#define MP_PR_SET_NAME 15
#define MP_PR_GET_CHILD_SUBREAPER 37
#define MP_PR_SET_NO_NEW_PRIVS 38
#define MP_PR_SET_PTRACER 0x59616d61
#define MP_CAP_V3 0x20080522
#define MP_CAP_FOWNER 3
#define MP_ST_RDONLY 1
#define MP_S_IFMT 0170000
#define MP_S_IFDIR 0040000
#define MP_S_IFLNK 0120000
#define MP_SIG_IGN 1L
#define MP_SIG_SETMASK 2

struct mp_iovec {
  void *base;
  unsigned long len;
};
struct mp_msghdr {
  void *name;
  int namelen;
  struct mp_iovec *iov;
  unsigned long iovlen;
  void *control;
  unsigned long controllen;
  int flags;
};
struct mp_cmsg_fd {
  unsigned long len;
  int level, type;
  int fd;
  int pad;
};
struct mp_pollfd {
  int fd;
  short events, revents;
};
struct mp_sigaction {
  long handler;
  unsigned long flags;
  long restorer;
  unsigned long mask;
};
struct mp_timespec {
  long sec, nsec;
};

/* No memset/memcpy calls may appear: the build links without libc and fails on any. */
static void mp_zero(void *p, unsigned long n) {
  volatile char *c = p;
  while (n--) *c++ = 0;
}

static int mp_startswith(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

static void mp_close(int fd) {
  if (fd >= 0) SC1(__NR_close, fd);
}

/* --------------------------------------------------------------------------------- debug lines */

/* Writes a line built with the rule header's mp_line helpers. */
static void emit(struct mp_line *l) {
  l->buf[l->len++] = '\n';
  SC3(__NR_write, 2, l->buf, l->len);
}

/* --------------------------------------------------------------------------------- environment */

struct config {
  int debug;
  long window;
};

static struct config read_env(char **envp) {
  struct config c = {0, MP_RULE_TIME_WINDOW_DEFAULT};
  const char *window = 0;
  int debug_seen = 0;
  for (char **e = envp; e && *e; e++) {
    const char *v = *e;
    if (v[0] != 'M' || !mp_startswith(v, "MAMBAPATCH_")) continue;
    if (!debug_seen && mp_startswith(v + 11, "DEBUG=")) {
      debug_seen = 1;
      c.debug = v[17] == '1' && v[18] == '\0';
    }
    if (!window && mp_startswith(v + 11, "TIME_WINDOW=")) window = v + 23;
  }
  c.window = mp_time_window(window);
  return c;
}

/* ============================================================================== the supervisor */

struct sup {
  struct config cfg;
  int listener;
  unsigned euid;
  unsigned long root_dev, root_ino;
};

/* Reads len bytes of the target's memory, page by page (a read crossing into an unmapped page fails). */
static int read_mem(int pid, unsigned long addr, void *buf, unsigned long len) {
  char *out = buf;
  while (len > 0) {
    unsigned long chunk = 4096 - (addr & 4095);
    if (chunk > len) chunk = len;
    struct mp_iovec local = {out, chunk}, remote = {(void *)addr, chunk};
    if (sc6(__NR_process_vm_readv, pid, (long)&local, 1, (long)&remote, 1, 0) != (long)chunk) return 0;
    out += chunk;
    addr += chunk;
    len -= chunk;
  }
  return 1;
}

/* A NUL-terminated path of at most cap-1 bytes from the target. */
static int read_path(int pid, unsigned long addr, char *buf, unsigned long cap) {
  unsigned long got = 0;
  if (addr == 0) return 0;
  while (got < cap) {
    unsigned long chunk = 4096 - ((addr + got) & 4095);
    if (chunk > cap - got) chunk = cap - got;
    if (!read_mem(pid, addr + got, buf + got, chunk)) return 0;
    for (unsigned long i = got; i < got + chunk; i++)
      if (buf[i] == '\0') return 1;
    got += chunk;
  }
  return 0; /* longer than PATH_MAX: the kernel answers ENAMETOOLONG itself */
}

static long mp_stat(const char *path, struct stat *st, int nofollow) {
  return SC4(__NR_newfstatat, AT_FDCWD, path, st, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
}

/* Where the supervisor reaches what the target named: /proc/<tid>/cwd/<path>, /proc/<tid>/fd/<dirfd>/<path>,
 * /proc/<tid>/fd/<fd>, or an absolute path when the target's root is ours. */
static int resolve(struct sup *s, int pid, long dirfd, const char *path, struct mp_line *out) {
  struct mp_line proc;
  proc.len = 0;
  struct stat st;
  mp_add(&proc, "/proc/");
  mp_add_num(&proc, (unsigned long)pid, 10, 1);
  proc.buf[proc.len] = '\0';
  unsigned long base = proc.len;
  mp_add(&proc, "/root");
  proc.buf[proc.len] = '\0';
  if (mp_stat(proc.buf, &st, 0) != 0 || st.st_dev != s->root_dev || st.st_ino != s->root_ino) return 0;
  proc.len = base;
  proc.buf[base] = '\0';
  out->len = 0;
  if (path && path[0] == '/') {
    mp_add(out, path);
  } else {
    mp_add(out, proc.buf);
    if (dirfd == AT_FDCWD) {
      mp_add(out, "/cwd");
    } else {
      if (dirfd < 0 || dirfd > 0x7fffffff) return 0;
      mp_add(out, "/fd/");
      mp_add_num(out, (unsigned long)dirfd, 10, 1);
    }
    if (path && path[0]) {
      mp_add(out, "/");
      mp_add(out, path);
    }
  }
  if (out->len >= sizeof out->buf - 1) return 0;
  out->buf[out->len] = '\0';
  return 1;
}

/* The descriptor was opened with O_PATH (fchmod and futimens then fail with EBADF in the kernel). */
static int fd_is_path_only(int pid, long fd) {
  struct mp_line p;
  p.len = 0;
  char buf[512];
  mp_add(&p, "/proc/");
  mp_add_num(&p, (unsigned long)pid, 10, 1);
  mp_add(&p, "/fdinfo/");
  mp_add_num(&p, (unsigned long)fd, 10, 1);
  p.buf[p.len] = '\0';
  long f = SC4(__NR_openat, AT_FDCWD, p.buf, O_RDONLY | O_CLOEXEC, 0);
  if (f < 0) return 1; /* cannot tell: treat as not inspectable */
  long n = SC3(__NR_read, f, buf, sizeof buf - 1);
  mp_close((int)f);
  if (n <= 0) return 1;
  buf[n] = '\0';
  for (long i = 0; i + 6 < n; i++) {
    if (!mp_startswith(buf + i, "flags:")) continue;
    unsigned long v = 0;
    const char *c = buf + i + 6;
    while (*c == ' ' || *c == '\t') c++;
    while (*c >= '0' && *c <= '7') v = v * 8 + (unsigned long)(*c++ - '0');
    return (v & O_PATH) != 0;
  }
  return 1;
}

/* The ioctl number of 5.0-5.16 (_IOR); 5.17 corrected the header to _IOW and accepts both. */
#define MP_NOTIF_ID_VALID SECCOMP_IOR(2, __u64)

static int id_valid(struct sup *s, unsigned long long id) {
  return SC3(__NR_ioctl, s->listener, MP_NOTIF_ID_VALID, &id) == 0;
}

/* 1: answer with *err (0 or -errno); 0: continue the call untouched. */
static int decide_chmod(struct sup *s, struct seccomp_notif *n, const char *fn, long dirfd, unsigned long path_addr,
                        int has_path, unsigned mode, int flags, long *err) {
  char path[4096];
  struct mp_line target;
  struct stat st;
  struct statfs sfs;
  int pid = (int)n->pid;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return 0;
  if (has_path && !read_path(pid, path_addr, path, sizeof path)) return 0;
  if (has_path && path[0] == '\0' && !(flags & AT_EMPTY_PATH)) return 0; /* ENOENT */
  if (!has_path && fd_is_path_only(pid, dirfd)) return 0;
  if (!resolve(s, pid, dirfd, has_path ? path : 0, &target)) return 0;
  int fdform = !has_path || path[0] == '\0';
  if (mp_stat(target.buf, &st, (flags & AT_SYMLINK_NOFOLLOW) && !fdform) != 0) return 0;
  if ((st.st_mode & MP_S_IFMT) == MP_S_IFLNK) return 0; /* the kernel's answer for a symlink stands */
  if (st.st_uid == s->euid) return 0;                   /* the owner's call: untouched */
  if (SC2(__NR_statfs, target.buf, &sfs) != 0 || (sfs.f_flags & MP_ST_RDONLY)) return 0; /* EROFS first */
  if (!mp_mode_already_allows(st.st_mode, mode, (st.st_mode & MP_S_IFMT) == MP_S_IFDIR)) return 0;
  if (!id_valid(s, n->id)) return 0;
  if (s->cfg.debug) {
    struct mp_line l;
    mp_line_mode_ok(&l, fn, has_path ? path : 0, dirfd, mode, st.st_mode);
    emit(&l);
  }
  *err = 0;
  return 1;
}

enum time_kind { TIMESPEC, TIMEVAL, UTIMBUF };

static int decide_times(struct sup *s, struct seccomp_notif *n, const char *fn, long dirfd, unsigned long path_addr,
                        int has_path, unsigned long times_addr, enum time_kind kind, int flags, long *err) {
  char path[4096];
  struct mp_line target;
  struct stat st;
  long raw[4];
  struct mp_rule_time ts[2];
  int pid = (int)n->pid;
  if (times_addr == 0) return 0; /* a plain touch: the kernel decides */
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return 0;
  if (!read_mem(pid, times_addr, raw, kind == UTIMBUF ? 2 * sizeof(long) : 4 * sizeof(long))) return 0;
  if (kind == UTIMBUF) {
    ts[0] = (struct mp_rule_time){raw[0], 0};
    ts[1] = (struct mp_rule_time){raw[1], 0};
  } else {
    for (int i = 0; i < 2; i++) {
      long frac = raw[2 * i + 1];
      if (kind == TIMEVAL && (frac < 0 || frac >= 1000000)) return 0; /* EINVAL */
      ts[i] = (struct mp_rule_time){raw[2 * i], kind == TIMEVAL ? frac * 1000 : frac};
    }
  }
  if (kind == TIMESPEC) {
    int special = 0;
    for (int i = 0; i < 2; i++) {
      long ns = ts[i].nsec;
      if (ns == MP_RULE_UTIME_OMIT || ns == MP_RULE_UTIME_NOW) special++;
      else if (ns < 0 || ns >= 1000000000L) return 0; /* EINVAL */
    }
    /* both NOW is a touch; both OMIT changes nothing: the kernel allows both */
    if (special == 2 && ts[0].nsec == ts[1].nsec) return 0;
  }
  struct mp_timespec now;
  if (SC2(__NR_clock_gettime, 0 /* CLOCK_REALTIME */, &now) != 0) return 0;
  struct mp_rule_time t_now = {now.sec, now.nsec};
  if (!mp_only_now_requested(ts, &t_now, s->cfg.window)) return 0;
  if (has_path && !read_path(pid, path_addr, path, sizeof path)) return 0;
  if (has_path && path[0] == '\0' && !(flags & AT_EMPTY_PATH)) return 0;
  if (!has_path && (flags || dirfd == AT_FDCWD || fd_is_path_only(pid, dirfd))) return 0;
  if (!resolve(s, pid, dirfd, has_path ? path : 0, &target)) return 0;
  int nofollow = (flags & AT_SYMLINK_NOFOLLOW) && has_path && path[0] != '\0';
  if (mp_stat(target.buf, &st, nofollow) != 0) return 0;
  if (st.st_uid == s->euid) return 0; /* the owner's call: untouched */
  if (!id_valid(s, n->id)) return 0;
  long r = SC4(__NR_utimensat, AT_FDCWD, target.buf, 0, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
  if (s->cfg.debug) {
    struct mp_line l;
    mp_line_touched(&l, fn, has_path ? path : 0, dirfd, (int)-r);
    emit(&l);
  }
  *err = r;
  return 1;
}

static int decide(struct sup *s, struct seccomp_notif *n, long *err) {
  const __u64 *a = n->data.args;
  if (n->data.arch != MP_AUDIT_ARCH || n->pid == 0) return 0;
  switch (n->data.nr) {
#ifdef __NR_chmod
    case __NR_chmod: return decide_chmod(s, n, "chmod", AT_FDCWD, a[0], 1, (unsigned)a[1], 0, err);
#endif
    case __NR_fchmod: return decide_chmod(s, n, "fchmod", (int)a[0], 0, 0, (unsigned)a[1], 0, err);
    case __NR_fchmodat: return decide_chmod(s, n, "fchmodat", (int)a[0], a[1], 1, (unsigned)a[2], 0, err);
    case __NR_fchmodat2: return decide_chmod(s, n, "fchmodat", (int)a[0], a[1], 1, (unsigned)a[2], (int)a[3], err);
#ifdef __NR_utime
    case __NR_utime: return decide_times(s, n, "utime", AT_FDCWD, a[0], 1, a[1], UTIMBUF, 0, err);
#endif
#ifdef __NR_utimes
    case __NR_utimes: return decide_times(s, n, "utimes", AT_FDCWD, a[0], 1, a[1], TIMEVAL, 0, err);
#endif
#ifdef __NR_futimesat
    case __NR_futimesat: return decide_times(s, n, "futimesat", (int)a[0], a[1], a[1] != 0, a[2], TIMEVAL, 0, err);
#endif
    case __NR_utimensat:
      return decide_times(s, n, a[1] ? "utimensat" : "futimens", (int)a[0], a[1], a[1] != 0, a[2], TIMESPEC, (int)a[3], err);
    default: return 0;
  }
}

static void serve(struct sup *s) {
  struct seccomp_notif n;
  struct seccomp_notif_resp r;
  for (;;) {
    struct mp_pollfd p = {s->listener, MP_POLLIN, 0};
    long k = SC5(__NR_ppoll, &p, 1, 0, 0, 0);
    if (k == -MP_EINTR) continue;
    if (k < 0) return;
    if (!(p.revents & MP_POLLIN)) return; /* POLLHUP: no filtered task is left */
    mp_zero(&n, sizeof n);
    long rc = SC3(__NR_ioctl, s->listener, SECCOMP_IOCTL_NOTIF_RECV, &n);
    if (rc == -MP_EINTR || rc == -MP_ENOENT) continue; /* the caller went away meanwhile */
    if (rc < 0) return;
    long err = 0;
    mp_zero(&r, sizeof r);
    r.id = n.id;
    if (decide(s, &n, &err)) {
      r.val = 0;
      r.error = (int)err;
    } else {
      r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    SC3(__NR_ioctl, s->listener, SECCOMP_IOCTL_NOTIF_SEND, &r); /* ENOENT: the caller is gone */
  }
}

static void close_all_but(int keep1, int keep2) {
  /* close_range (5.9) where there is one, else one by one */
  int lo = keep1 < keep2 ? keep1 : keep2, hi = keep1 < keep2 ? keep2 : keep1;
  int ranges[3][2] = {{0, lo - 1}, {lo + 1, hi - 1}, {hi + 1, 0x7fffffff}};
  for (int i = 0; i < 3; i++) {
    if (ranges[i][0] > ranges[i][1]) continue;
    if (SC3(__NR_close_range, ranges[i][0], ranges[i][1], 0) == 0) continue;
    int end = ranges[i][1] > 65535 ? 65535 : ranges[i][1];
    for (int fd = ranges[i][0]; fd <= end; fd++) mp_close(fd);
  }
}

__attribute__((noreturn)) static void mp_exit(int status) {
  for (;;) SC1(__NR_exit_group, status);
}

/* The supervisor process (the program's grandchild). Never returns. */
__attribute__((noreturn)) static void supervisor(int sock, struct config cfg) {
  struct sup s = {cfg, -1, 0, 0, 0};
  SC0(__NR_setsid);
  static const int ignored[] = {1 /* HUP */, 2 /* INT */, 3 /* QUIT */, 13 /* PIPE */, 20 /* TSTP */, 21 /* TTIN */, 22 /* TTOU */};
  for (unsigned i = 0; i < sizeof ignored / sizeof *ignored; i++) {
    struct mp_sigaction sa = {MP_SIG_IGN, 0, 0, 0};
    SC4(__NR_rt_sigaction, ignored[i], &sa, 0, 8);
  }
  unsigned long empty = 0;
  SC4(__NR_rt_sigprocmask, MP_SIG_SETMASK, &empty, 0, 8);
  close_all_but(sock, cfg.debug ? 2 : sock);
  SC2(__NR_prctl, MP_PR_SET_NAME, "mambapatch-sup");
  s.euid = (unsigned)SC0(__NR_geteuid);
  struct stat root;
  if (mp_stat("/", &root, 0) == 0) { /* else no root matches: every call continues untouched */
    s.root_dev = root.st_dev;
    s.root_ino = root.st_ino;
  }

  /* the listener, or end of file when the program gave up */
  char data;
  struct mp_cmsg_fd cm;
  mp_zero(&cm, sizeof cm);
  struct mp_iovec iov = {&data, 1};
  struct mp_msghdr msg = {0, 0, &iov, 1, &cm, sizeof cm, 0};
  long got;
  do got = SC3(__NR_recvmsg, sock, &msg, MP_MSG_CMSG_CLOEXEC);
  while (got == -MP_EINTR);
  mp_close(sock);
  if (got != 1 || msg.controllen < 20 || cm.level != MP_SOL_SOCKET || cm.type != MP_SCM_RIGHTS) mp_exit(0);
  s.listener = cm.fd;
  serve(&s);
  mp_exit(0);
}

/* ================================================================================ program side */

static void unpatched(const struct config *cfg, const char *why, long err) {
  if (!cfg->debug) return;
  struct mp_line l;
  l.len = 0;
  mp_add(&l, "mambapatch: supervise: ");
  mp_add(&l, why);
  if (err) {
    mp_add(&l, " (errno ");
    mp_add_num(&l, (unsigned long)-err, 10, 1);
    mp_add(&l, ")");
  }
  mp_add(&l, "; running unpatched");
  emit(&l);
}

/* Linux release >= 5.8: an unused filter wakes its listener with POLLHUP, so the supervisor can exit. */
static int kernel_at_least_5_8(void) {
  char u[6 * 65];
  if (SC1(__NR_uname, u) != 0) return 0;
  const char *r = u + 2 * 65;
  long major = 0, minor = 0;
  while (*r >= '0' && *r <= '9') major = major * 10 + (*r++ - '0');
  if (*r++ != '.') return 0;
  while (*r >= '0' && *r <= '9') minor = minor * 10 + (*r++ - '0');
  return major > 5 || (major == 5 && minor >= 8);
}

static int has_cap_fowner(void) {
  struct {
    unsigned version;
    int pid;
  } hdr = {MP_CAP_V3, 0};
  struct {
    unsigned effective, permitted, inheritable;
  } data[2];
  if (SC2(__NR_capget, &hdr, data) != 0) return 0;
  return (data[0].effective >> MP_CAP_FOWNER) & 1;
}

static long install_filter(void) {
  static const unsigned calls[] = {
#ifdef __NR_chmod
      __NR_chmod,
#endif
      __NR_fchmod, __NR_fchmodat, __NR_fchmodat2,
#ifdef __NR_utime
      __NR_utime,
#endif
#ifdef __NR_utimes
      __NR_utimes,
#endif
#ifdef __NR_futimesat
      __NR_futimesat,
#endif
      __NR_utimensat,
  };
  enum { N = sizeof calls / sizeof *calls };
  struct sock_filter f[N + 8];
  unsigned k = 0;
  /* [ld arch][jeq arch][ld nr](x86_64: [jge x32])[jeq call]x N[ret allow][ret notify] */
  unsigned total = N + 5;
#ifdef __x86_64__
  total++;
#endif
  unsigned allow = total - 2, notify = total - 1;
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4 /* offsetof(seccomp_data, arch) */);
  f[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MP_AUDIT_ARCH, 0, (unsigned char)(allow - k - 1));
  k++;
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0 /* offsetof(seccomp_data, nr) */);
#ifdef __x86_64__
  f[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, (unsigned char)(allow - k - 1), 0);
  k++;
#endif
  for (unsigned i = 0; i < N; i++, k++)
    f[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, calls[i], (unsigned char)(notify - k - 1), 0);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
  struct sock_fprog prog = {(unsigned short)k, f};
  return SC3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* Called from the entry stub with the original stack pointer (argc, argv..., 0, envp..., 0, auxv). */
__attribute__((used, visibility("hidden"))) void mp_hook_main(long *sp, long *regs);
void mp_hook_main(long *sp, long *regs) {
  char **envp;
#if defined(__powerpc64__)
  if (sp[0] == 0) /* entered from ld.so: argc, argv, envp in r3, r4, r5 */
    envp = (char **)regs[5]; /* regs[i] = ri */
  else
#else
  (void)regs;
#endif
    envp = (char **)(sp + 1 + sp[0] + 1);
  struct config cfg = read_env(envp);

  if (SC0(__NR_geteuid) == 0 || has_cap_fowner()) return; /* nothing can fail for it */
  unsigned avail = SECCOMP_RET_USER_NOTIF;
  long r = SC3(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &avail);
  if (r != 0) return unpatched(&cfg, "seccomp user notification not available", r);
  /* TSYNC_ESRCH (5.7, after CONTINUE in 5.5): EFAULT for the NULL program, EINVAL before; changes nothing */
  r = SC3(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
          SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH, 0);
  if (r != -MP_EFAULT) return unpatched(&cfg, "kernel without SECCOMP_USER_NOTIF_FLAG_CONTINUE (needs Linux 5.8)", r);
  if (!kernel_at_least_5_8()) return unpatched(&cfg, "kernel older than 5.8 (no POLLHUP for an unused filter)", 0);
  int subreaper = 0;
  if (SC2(__NR_prctl, MP_PR_GET_CHILD_SUBREAPER, &subreaper) == 0 && subreaper)
    return unpatched(&cfg, "the program is a child subreaper (its supervisor would be its child)", 0);

  int sv[2];
  r = SC4(__NR_socketpair, MP_AF_UNIX, MP_SOCK_STREAM | MP_SOCK_CLOEXEC, 0, sv);
  if (r != 0) return unpatched(&cfg, "socketpair failed", r);
  long child = SC5(__NR_clone, MP_SIGCHLD, 0, 0, 0, 0);
  if (child == 0) {
    /* the intermediate child: fork the supervisor, tell its pid, leave at once (the program need not
     * wait for the supervisor to be scheduled: the listener waits in the socket until it reads it) */
    mp_close(sv[0]);
    /* every signal blocked until the supervisor has left the session and ignores the terminal ones:
     * a Ctrl-C right after the program starts must not kill it (a pending ignored signal is dropped) */
    unsigned long all = ~0UL;
    SC4(__NR_rt_sigprocmask, MP_SIG_SETMASK, &all, 0, 8);
    long sup = SC5(__NR_clone, MP_SIGCHLD, 0, 0, 0, 0);
    if (sup == 0) supervisor(sv[1], cfg);
    int spid = (int)sup;
    if (sup > 0) SC3(__NR_write, sv[1], &spid, sizeof spid);
    mp_exit(sup < 0 ? 1 : 0);
  }
  mp_close(sv[1]);
  if (child < 0) {
    mp_close(sv[0]);
    return unpatched(&cfg, "fork failed", child);
  }
  /* reap the intermediate child (ECHILD when SIGCHLD is ignored: the kernel reaped it), then read the
   * supervisor's pid it wrote, or end of file when it could not fork */
  int status = 0;
  do r = SC4(__NR_wait4, child, &status, 0, 0);
  while (r == -MP_EINTR);
  int spid = 0;
  long got;
  do got = SC3(__NR_read, sv[0], &spid, sizeof spid);
  while (got == -MP_EINTR);
  if (got != sizeof spid || spid <= 0) {
    mp_close(sv[0]);
    return unpatched(&cfg, "the supervisor did not start", 0);
  }

  SC2(__NR_prctl, MP_PR_SET_PTRACER, spid); /* EINVAL without Yama: nothing needed then */
  r = SC5(__NR_prctl, MP_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (r != 0) {
    mp_close(sv[0]);
    return unpatched(&cfg, "cannot set no_new_privs", r);
  }
  long listener = install_filter();
  if (listener == -MP_EBUSY) { /* a hooked ancestor's supervisor serves this process already */
    mp_close(sv[0]);
    return;
  }
  if (listener < 0) {
    mp_close(sv[0]);
    return unpatched(&cfg, "cannot install the seccomp filter", listener);
  }
  char one = 1;
  struct mp_cmsg_fd cm = {20 /* CMSG_LEN(sizeof(int)) */, MP_SOL_SOCKET, MP_SCM_RIGHTS, (int)listener, 0};
  struct mp_iovec iov = {&one, 1};
  struct mp_msghdr msg = {0, 0, &iov, 1, &cm, sizeof cm, 0};
  do r = SC3(__NR_sendmsg, sv[0], &msg, 0);
  while (r == -MP_EINTR);
  mp_close((int)listener);
  mp_close(sv[0]);
  if (r != 1) unpatched(&cfg, "cannot hand the listener to the supervisor", r);
}
