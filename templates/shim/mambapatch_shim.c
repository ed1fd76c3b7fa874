/*
 * mambapatch shim: turns the kernel's owner-only refusals that break mamba in shared prefixes into the
 * operation a group member is allowed to do, and nothing else.
 *
 *   Timestamps (utimensat, futimens, utimes, utime, futimesat, lutimes, futimes): the real call first.
 *   Only when it fails with EPERM and every explicit time in the request is within
 *   MAMBAPATCH_TIME_WINDOW seconds (default 10) of now, retry as a touch to now (times = NULL, which a
 *   writer may do) and return that result. UTIME_OMIT/UTIME_NOW entries count as "not explicit"; the
 *   kernel only lets a non-owner set both times to now, so an omitted time is touched as well.
 *   Modes (fchmodat, chmod, fchmod): the real call first. Only on EPERM, stat the file and report
 *   success when the request would not make the file more open than it is and would not take away
 *   anything its owner or group has (mp_mode_already_allows). Everything else keeps its errno.
 *   Both rules live in templates/rules/mambapatch_rules.h, shared with the supervisor blob.
 *
 * The success path is one raw system call, exactly what glibc does on these 64-bit targets. No
 * allocation, no locks, no TLS of our own; the fallbacks use only system calls and stack buffers.
 * Real functions are raw syscalls (no dlsym, no new glibc symbol versions: the built file must load
 * on glibc 2.17).
 *
 * Loading positions: LD_PRELOAD or first DT_NEEDED of the executable interpose by symbol lookup. As a
 * DT_NEEDED of a library (e.g. libmamba dlopen'ed by Python) libc is found first, so the constructor
 * rewrites the GOT entries of the wrapped functions in every loaded object (libstdc++ makes the
 * calls), and wraps dlopen/dlsym in those objects to patch objects loaded later.
 *
 * Self-heal: if <dir of shim>/../.mambapatch/hook.sh and watch are trustworthy, the identity of each
 * watched file is recorded at start; at exit, if one was replaced, hook.sh runs once.
 *
 * Start-up cost, when interposing and without a hook: one walk of the loaded objects that stops at libc
 * (no GOT is touched), one pass over the environment, one failed lstat of hook.sh; no allocation, no
 * zero-filled .bss for the loader to map (the self-heal buffers are mapped only when a hook is installed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "../rules/mambapatch_rules.h" /* the mode and time rules, shared with the supervisor */

#ifndef MAMBAPATCH_VERSION
#define MAMBAPATCH_VERSION "0.0.0-dev"
#endif

#if defined(__x86_64__)
#define MP_ARCH "x86_64"
#define MP_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define MP_R_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define MP_ARCH "aarch64"
#define MP_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define MP_R_GLOB_DAT R_AARCH64_GLOB_DAT
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MP_ARCH "ppc64le"
#define MP_R_JUMP_SLOT R_PPC64_JMP_SLOT
#define MP_R_GLOB_DAT R_PPC64_GLOB_DAT
#else
#error "mambapatch shim: unsupported architecture (x86_64, aarch64, ppc64le)"
#endif

#define EXPORT __attribute__((visibility("default")))

/* Whether GCC turns `return fnptr(...)` into a jump here (see mp_dlopen). */
#if defined(__powerpc64__)
#define MP_TAIL_CALLS 0
#else
#define MP_TAIL_CALLS 1
#endif

/* The marker `mambapatch shim info` reads from the file. */
EXPORT const char mambapatch_shim_id[] = "@(#)mambapatch-shim version=" MAMBAPATCH_VERSION " arch=" MP_ARCH;

extern char **environ;

/* ------------------------------------------------------------------ small helpers (no libc string) */

static size_t mp_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static int mp_startswith(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

static int mp_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* getenv without locks or allocation (async-signal-safe). */
static const char *mp_getenv(const char *name) {
  size_t n = mp_strlen(name);
  char **e = environ;
  if (!e) return NULL;
  for (; *e; e++)
    if (mp_startswith(*e, name) && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static int env_is_1(const char *name) {
  const char *v = mp_getenv(name);
  return v && v[0] == '1' && v[1] == '\0';
}

/* Writes a line built with the rule header's mp_line helpers (one write(2), errno kept). */
static void emit(struct mp_line *l) {
  l->buf[l->len++] = '\n';
  int saved = errno;
  ssize_t r = syscall(SYS_write, 2, l->buf, l->len);
  (void)r;
  errno = saved;
}

/* ------------------------------------------------------------------------------------ timestamps */

/* The window and the rule come from the shared rule header; "now" is taken once per request. */
static int only_now_requested(const struct timespec ts[2]) {
  struct timespec now;
  if (!ts) return 0; /* a plain touch was refused: nothing else to try */
  if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &now) != 0) return 0;
  struct mp_rule_time t[2] = {{ts[0].tv_sec, ts[0].tv_nsec}, {ts[1].tv_sec, ts[1].tv_nsec}};
  struct mp_rule_time n = {now.tv_sec, now.tv_nsec};
  return mp_only_now_requested(t, &n, mp_time_window(mp_getenv("MAMBAPATCH_TIME_WINDOW")));
}

static int set_times(const char *fn, int dirfd, const char *path, const struct timespec ts[2], int flags) {
  long r = syscall(SYS_utimensat, dirfd, path, ts, flags);
  if (r == 0 || errno != EPERM || !only_now_requested(ts)) return (int)r;
  r = syscall(SYS_utimensat, dirfd, path, (const struct timespec *)NULL, flags);
  if (env_is_1("MAMBAPATCH_DEBUG")) {
    int err = errno;
    struct mp_line l;
    mp_line_touched(&l, fn, path, dirfd, r == 0 ? 0 : err);
    emit(&l);
  }
  return (int)r;
}

static const struct timespec *from_timeval(const struct timeval *tv, struct timespec ts[2]) {
  if (!tv) return NULL;
  for (int i = 0; i < 2; i++) {
    ts[i].tv_sec = tv[i].tv_sec;
    ts[i].tv_nsec = tv[i].tv_usec * 1000;
  }
  return ts;
}

static int mp_utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags) {
  if (path == NULL) { /* as glibc: futimens is the way to name a descriptor */
    errno = EINVAL;
    return -1;
  }
  return set_times("utimensat", dirfd, path, ts, flags);
}

static int mp_futimens(int fd, const struct timespec ts[2]) {
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  return set_times("futimens", fd, NULL, ts, 0);
}

static int mp_utimes(const char *path, const struct timeval tv[2]) {
  struct timespec ts[2];
  return set_times("utimes", AT_FDCWD, path, from_timeval(tv, ts), 0);
}

static int mp_lutimes(const char *path, const struct timeval tv[2]) {
  struct timespec ts[2];
  return set_times("lutimes", AT_FDCWD, path, from_timeval(tv, ts), AT_SYMLINK_NOFOLLOW);
}

static int mp_futimes(int fd, const struct timeval tv[2]) {
  struct timespec ts[2];
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  return set_times("futimes", fd, NULL, from_timeval(tv, ts), 0);
}

static int mp_futimesat(int dirfd, const char *path, const struct timeval tv[2]) {
  struct timespec ts[2];
  return set_times("futimesat", dirfd, path, from_timeval(tv, ts), 0);
}

static int mp_utime(const char *path, const struct utimbuf *b) {
  struct timespec ts[2];
  if (b) {
    ts[0].tv_sec = b->actime;
    ts[0].tv_nsec = 0;
    ts[1].tv_sec = b->modtime;
    ts[1].tv_nsec = 0;
  }
  return set_times("utime", AT_FDCWD, path, b ? ts : NULL, 0);
}

/* ----------------------------------------------------------------------------------------- modes */

/* Called with errno == EPERM after a refused chmod; stat_rc/st describe the file. */
static int refused_chmod(const char *fn, const char *path, int fd, mode_t mode, long stat_rc, const struct stat *st) {
  if (stat_rc != 0 || !mp_mode_already_allows(st->st_mode, mode, S_ISDIR(st->st_mode))) {
    errno = EPERM;
    return -1;
  }
  if (env_is_1("MAMBAPATCH_DEBUG")) {
    struct mp_line l;
    mp_line_mode_ok(&l, fn, path, fd, mode, st->st_mode);
    emit(&l);
  }
  errno = EPERM; /* errno is unspecified on success; leave what the real call set */
  return 0;
}

/* glibc's fchmodat with flags (AT_SYMLINK_NOFOLLOW), found in libc at start; NULL before that. */
static int (*real_fchmodat)(int, const char *, mode_t, int);

static int mp_fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
  long r;
  if (flags == 0) {
    r = syscall(SYS_fchmodat, dirfd, path, mode);
  } else if (real_fchmodat) {
    r = real_fchmodat(dirfd, path, mode, flags);
  } else {
    errno = (flags & ~AT_SYMLINK_NOFOLLOW) ? EINVAL : ENOTSUP; /* what glibc < 2.32 answers */
    return -1;
  }
  if (r == 0 || errno != EPERM) return (int)r;
  struct stat st;
  long s = syscall(SYS_newfstatat, dirfd, path, &st, flags & AT_SYMLINK_NOFOLLOW);
  return refused_chmod("fchmodat", path, dirfd, mode, s, &st);
}

static int mp_chmod(const char *path, mode_t mode) {
  long r = syscall(SYS_fchmodat, AT_FDCWD, path, mode);
  if (r == 0 || errno != EPERM) return (int)r;
  struct stat st;
  long s = syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0);
  return refused_chmod("chmod", path, -1, mode, s, &st);
}

static int mp_fchmod(int fd, mode_t mode) {
  long r = syscall(SYS_fchmod, fd, mode);
  if (r == 0 || errno != EPERM) return (int)r;
  struct stat st;
  long s = syscall(SYS_fstat, fd, &st);
  return refused_chmod("fchmod", NULL, fd, mode, s, &st);
}

/* The exported names (symbol interposition); internal code takes the addresses of the mp_ functions,
 * which cannot be interposed. */
#define EXPORT_AS(name, impl) extern __typeof(name) name __attribute__((alias(#impl), visibility("default")))
EXPORT_AS(utimensat, mp_utimensat);
EXPORT_AS(futimens, mp_futimens);
EXPORT_AS(utimes, mp_utimes);
EXPORT_AS(lutimes, mp_lutimes);
EXPORT_AS(futimes, mp_futimes);
EXPORT_AS(futimesat, mp_futimesat);
EXPORT_AS(utime, mp_utime);
EXPORT_AS(fchmodat, mp_fchmodat);
EXPORT_AS(chmod, mp_chmod);
EXPORT_AS(fchmod, mp_fchmod);

/* ------------------------------------------------------------------------- loaded-object helpers */

static const char *base_name(const char *p) {
  const char *b = p;
  for (; *p; p++)
    if (*p == '/') b = p + 1;
  return b;
}

/* Objects never patched: the loader, libc (its calls are internal), the vDSO, and the shim. */
static int is_system_object(const char *name) {
  const char *b = base_name(name);
  return mp_startswith(b, "libc.so") || mp_startswith(b, "ld-linux") || mp_startswith(b, "ld64.so") ||
         mp_startswith(b, "ld.so") || mp_startswith(b, "linux-vdso") || mp_startswith(b, "linux-gate");
}

struct dyninfo {
  const ElfW(Sym) *symtab;
  const char *strtab;
  const ElfW(Rela) *jmprel, *rela;
  size_t jmprelsz, relasz;
  const uint32_t *gnu_hash;
  const ElfW(Half) *versym;
};

/* d_ptr values are relative in the file; some loaders rewrite them in place to absolute addresses. */
static uintptr_t dyn_addr(ElfW(Addr) base, ElfW(Addr) v) { return v < base ? base + v : v; }

static int read_dynamic(const struct dl_phdr_info *info, struct dyninfo *d) {
  const ElfW(Dyn) *dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 0;
  ElfW(Addr) b = info->dlpi_addr;
  int pltrel = DT_RELA;
  *d = (struct dyninfo){0};
  for (; dyn->d_tag != DT_NULL; dyn++) {
    switch (dyn->d_tag) {
      case DT_SYMTAB: d->symtab = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      case DT_STRTAB: d->strtab = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      case DT_JMPREL: d->jmprel = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      case DT_PLTRELSZ: d->jmprelsz = dyn->d_un.d_val; break;
      case DT_PLTREL: pltrel = (int)dyn->d_un.d_val; break;
      case DT_RELA: d->rela = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      case DT_RELASZ: d->relasz = dyn->d_un.d_val; break;
      case DT_GNU_HASH: d->gnu_hash = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      case DT_VERSYM: d->versym = (const void *)dyn_addr(b, dyn->d_un.d_ptr); break;
      default: break;
    }
  }
  if (pltrel != DT_RELA) d->jmprel = NULL; /* REL is not used on our 64-bit targets */
  return d->symtab && d->strtab;
}

/* A defined function in one object, by GNU hash; the default version wins over hidden ones. */
static void *find_function(const struct dl_phdr_info *info, const struct dyninfo *d, const char *name) {
  const uint32_t *gh = d->gnu_hash;
  if (!gh) return NULL;
  uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2];
  const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)&gh[4] + bloom_size);
  const uint32_t *chain = buckets + nbuckets;
  uint32_t h = 5381;
  for (const char *s = name; *s; s++) h = h * 33 + (unsigned char)*s;
  uint32_t i = buckets[h % nbuckets];
  void *hidden = NULL;
  if (i < symoffset) return NULL;
  for (;; i++) {
    uint32_t ch = chain[i - symoffset];
    const ElfW(Sym) *sym = &d->symtab[i];
    if ((h | 1) == (ch | 1) && sym->st_shndx != SHN_UNDEF && ELF64_ST_TYPE(sym->st_info) == STT_FUNC &&
        mp_streq(d->strtab + sym->st_name, name)) {
      void *addr = (void *)(info->dlpi_addr + sym->st_value);
      if (!d->versym || !(d->versym[i] & 0x8000)) return addr;
      if (!hidden) hidden = addr;
    }
    if (ch & 1) break;
  }
  return hidden;
}

/* ----------------------------------------------------------------------------------- GOT patching */

static void *(*real_dlopen)(const char *, int);
static void *(*real_dlsym)(void *, const char *);
static void *mp_dlopen(const char *file, int mode);
static void *mp_dlsym(void *handle, const char *name);

struct hook {
  const char *name;
  void *addr;
  int loader; /* dlopen/dlsym: installed only once the real ones are known */
};

static const struct hook hooks[] = {
    {"utimensat", (void *)mp_utimensat, 0}, {"futimens", (void *)mp_futimens, 0},
    {"utimes", (void *)mp_utimes, 0},       {"lutimes", (void *)mp_lutimes, 0},
    {"futimes", (void *)mp_futimes, 0},     {"futimesat", (void *)mp_futimesat, 0},
    {"utime", (void *)mp_utime, 0},         {"fchmodat", (void *)mp_fchmodat, 0},
    {"chmod", (void *)mp_chmod, 0},         {"fchmod", (void *)mp_fchmod, 0},
    {"dlopen", (void *)mp_dlopen, 1},
#if MP_TAIL_CALLS
    {"dlsym", (void *)mp_dlsym, 1},
#endif
};

static uintptr_t self_base;          /* dlpi_addr of the shim */
static const char *self_name = "";   /* its path as the loader knows it */
static unsigned long long seen_adds; /* dl_iterate_phdr's load counter at the last scan */
static unsigned long redirected;     /* GOT entries rewritten so far (for MAMBAPATCH_DEBUG) */

#define N_HOOKS (sizeof hooks / sizeof hooks[0])
static void *libc_fn[N_HOOKS]; /* libc's (or libdl's) definitions of the hooked names */

static int in_object(const struct dl_phdr_info *info, const void *p) {
  uintptr_t a = (uintptr_t)p;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && a >= info->dlpi_addr + ph->p_vaddr && a < info->dlpi_addr + ph->p_vaddr + ph->p_memsz) return 1;
  }
  return 0;
}

static int write_slot(const struct dl_phdr_info *info, void **slot, void *value) {
  /* Let the kernel try the store first: it fails with EFAULT instead of faulting when the page is
   * read-only. A writable page may also belong to an object another thread is still relocating; it must
   * not be made read-only under the loader's feet. */
  struct iovec local = {&value, sizeof value}, remote = {slot, sizeof value};
  long w = syscall(SYS_process_vm_writev, (long)syscall(SYS_getpid), &local, 1UL, &remote, 1UL, 0UL);
  if (w == (long)sizeof value) return 1;
  uintptr_t page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t addr = (uintptr_t)slot, page = addr & ~(page_size - 1);
  int prot = -1, relro = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
    if (addr < start || addr >= end) continue;
    if (ph->p_type == PT_LOAD)
      prot = ((ph->p_flags & PF_R) ? PROT_READ : 0) | ((ph->p_flags & PF_W) ? PROT_WRITE : 0) |
             ((ph->p_flags & PF_X) ? PROT_EXEC : 0);
    /* the loader makes only the whole pages of PT_GNU_RELRO read-only */
    if (ph->p_type == PT_GNU_RELRO && page >= (start & ~(page_size - 1)) && page < (end & ~(page_size - 1))) relro = 1;
  }
  if (prot < 0) return 0;
  if (relro) prot = PROT_READ;
  if (prot & PROT_WRITE) {
    *slot = value;
    return 1;
  }
  if (syscall(SYS_mprotect, page, page_size, prot | PROT_READ | PROT_WRITE) != 0) return 0;
  *slot = value;
  syscall(SYS_mprotect, page, page_size, prot);
  return 1;
}

static void patch_table(const struct dl_phdr_info *info, const struct dyninfo *d, const ElfW(Rela) *rel, size_t size) {
  if (!rel) return;
  for (size_t n = 0; n < size / sizeof *rel; n++) {
    unsigned type = (unsigned)ELF64_R_TYPE(rel[n].r_info);
    if (type != MP_R_JUMP_SLOT && type != MP_R_GLOB_DAT) continue;
    const ElfW(Sym) *sym = &d->symtab[ELF64_R_SYM(rel[n].r_info)];
    if (sym->st_shndx != SHN_UNDEF || sym->st_name == 0) continue;
    const char *name = d->strtab + sym->st_name;
    for (size_t h = 0; h < N_HOOKS; h++) {
      if (!mp_streq(name, hooks[h].name)) continue;
      if (hooks[h].loader && (!real_dlopen || !real_dlsym)) break;
      void **slot = (void **)(info->dlpi_addr + rel[n].r_offset);
      void *cur = *slot;
      /* Only entries bound to libc's function, or not bound yet (a lazy PLT entry points into its own
       * object): one bound to another interposer (fakeroot, ...) is left alone. */
      if (cur != hooks[h].addr && (cur == libc_fn[h] || in_object(info, cur))) redirected += (unsigned long)write_slot(info, slot, hooks[h].addr);
      break;
    }
  }
}

static int patch_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  struct dyninfo d;
  if (info->dlpi_addr == self_base || is_system_object(info->dlpi_name)) return 0;
  if (!read_dynamic(info, &d)) return 0;
  patch_table(info, &d, d.jmprel, d.jmprelsz);
  patch_table(info, &d, d.rela, d.relasz);
  return 0;
}

static int read_adds(struct dl_phdr_info *info, size_t size, void *data) {
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs)) *(unsigned long long *)data = info->dlpi_adds;
  return 1;
}

static void rescan_if_loaded(void) {
  unsigned long long adds = 0;
  dl_iterate_phdr(read_adds, &adds);
  if (adds == seen_adds) return;
  seen_adds = adds;
  dl_iterate_phdr(patch_object, NULL);
}

static int needs_caller(const char *file) {
  if (!file) return 0;
  int slash = 0;
  for (; *file; file++) {
    if (*file == '$') return 1;
    if (*file == '/') slash = 1;
  }
  return !slash;
}

/*
 * glibc's dlopen and dlsym look at their return address: a bare name is searched along the caller's
 * RPATH/RUNPATH, "$ORIGIN" is the caller's, RTLD_NEXT is relative to the caller. Where the compiler turns
 * `return real(...)` into a jump (x86_64, aarch64), such calls are handed over untouched and objects they
 * bring in are patched at the next dlsym. GCC does not emit indirect tail calls on ppc64le: there dlsym
 * is left alone and dlopen patches right away (a bare name is then searched as if the shim asked).
 */
static void *mp_dlopen(const char *file, int mode) {
  if (MP_TAIL_CALLS && needs_caller(file)) return real_dlopen(file, mode);
  void *h = real_dlopen(file, mode);
  if (h) rescan_if_loaded();
  return h;
}

__attribute__((unused)) static void *mp_dlsym(void *handle, const char *name) {
  /* RTLD_NEXT/RTLD_DEFAULT depend on the caller: hand them over untouched (a tail call) */
  if (handle == RTLD_NEXT || handle == RTLD_DEFAULT) return real_dlsym(handle, name);
  rescan_if_loaded(); /* catches objects that a dlopen by bare name brought in */
  return real_dlsym(handle, name);
}

/* First pass over the loaded objects: where are we, do we come before libc, and the real functions. */
struct survey {
  int index, self_index, libc_index;
};

static int survey_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct survey *s = data;
  if (s->self_index < 0 && in_object(info, (const void *)&survey_object)) {
    self_base = info->dlpi_addr;
    self_name = info->dlpi_name ? info->dlpi_name : "";
    s->self_index = s->index;
  }
  const char *b = base_name(info->dlpi_name ? info->dlpi_name : "");
  int libc = mp_startswith(b, "libc.so");
  /* Already seen before libc: interposing, so nothing will be patched and only fchmodat is needed. */
  int patching = !(s->self_index >= 0 && s->libc_index < 0);
  if (libc && s->libc_index < 0) s->libc_index = s->index;
  if ((libc && !real_fchmodat) || (patching && mp_startswith(b, "libdl.so"))) {
    struct dyninfo d;
    if (read_dynamic(info, &d)) {
      if (libc && !real_fchmodat) real_fchmodat = (int (*)(int, const char *, mode_t, int))find_function(info, &d, "fchmodat");
      if (patching) {
        if (!real_dlopen) real_dlopen = (void *(*)(const char *, int))find_function(info, &d, "dlopen");
        if (!real_dlsym) real_dlsym = (void *(*)(void *, const char *))find_function(info, &d, "dlsym");
        for (size_t h = 0; h < N_HOOKS; h++)
          if (!libc_fn[h]) libc_fn[h] = find_function(info, &d, hooks[h].name);
      }
    }
  }
  s->index++;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs)) seen_adds = info->dlpi_adds;
  return !patching && libc; /* interposing and fchmodat known: the rest does not matter */
}

/* -------------------------------------------------------------------------- environment hygiene */

static int is_shim_entry(const char *s, size_t n) {
  const char *own = base_name(self_name);
  size_t base = n;
  while (base > 0 && s[base - 1] != '/') base--;
  size_t len = n - base, own_len = mp_strlen(own);
  if (own_len == 0) own = "libmambapatch.so", own_len = mp_strlen(own);
  if (len != own_len) return 0;
  for (size_t i = 0; i < len; i++)
    if (s[base + i] != own[i]) return 0;
  return 1;
}

/* Removes the shim from LD_PRELOAD in environ, in place (the strings only get shorter). */
static void strip_preload(void) {
  char **e = environ;
  if (!e) return;
  for (; *e; e++) {
    if (!mp_startswith(*e, "LD_PRELOAD=")) continue;
    char *w = *e + 11;
    const char *r = w;
    int kept = 0;
    while (*r) {
      while (*r == ':' || *r == ' ') r++;
      const char *start = r;
      while (*r && *r != ':' && *r != ' ') r++;
      size_t len = (size_t)(r - start);
      if (len == 0 || is_shim_entry(start, len)) continue;
      if (kept++) *w++ = ':';
      for (size_t i = 0; i < len; i++) *w++ = start[i];
    }
    *w = '\0';
    if (!kept) { /* nothing left: drop the variable */
      char **p = e;
      for (; p[1]; p++) p[0] = p[1];
      p[0] = NULL;
      e--;
    }
  }
}

/* ------------------------------------------------------------------------------------ self-heal */

#define MAX_WATCH 64
struct identity {
  int exists;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
};

/* Needed only when a trustworthy hook is installed: mapped then, so that a process without one
 * touches none of it (and the loader maps no zero pages for it). */
struct watch_state {
  char hook_path[4096 + 16];
  char text[32768];
  const char *paths[MAX_WATCH];
  struct identity ids[MAX_WATCH];
};
static struct watch_state *watch;
static int watch_count;
static pid_t watch_pid;

static int append(char *dst, size_t cap, size_t *len, const char *s) {
  size_t n = mp_strlen(s);
  if (*len + n + 1 > cap) return 0;
  for (size_t i = 0; i < n; i++) dst[(*len)++] = s[i];
  dst[*len] = '\0';
  return 1;
}

static struct identity identify(const char *path) {
  struct stat st;
  struct identity id = {0};
  if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0) {
    id.exists = 1;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = st.st_size;
    id.mtime = st.st_mtim;
  }
  return id;
}

/* Not a symlink (st from lstat), of the right type, owned by root or the shim's owner, writable by nobody else. */
static int trusted_stat(const struct stat *st, int want_dir, uid_t shim_owner) {
  if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) return 0;
  if (st->st_uid != 0 && st->st_uid != shim_owner) return 0;
  return (st->st_mode & 022) == 0;
}

static int trusted(const char *path, int want_dir, uid_t shim_owner) {
  struct stat st;
  return syscall(SYS_newfstatat, AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && trusted_stat(&st, want_dir, shim_owner);
}

/* The shim's own path (suffix NULL), else <prefix>/.mambapatch followed by suffix for a shim at
 * <prefix>/lib/libmambapatch.so (textually; "<dir>/../.mambapatch" where the parent is unclear). */
static int state_path(char *buf, size_t cap, const char *suffix) {
  size_t len = 0;
  buf[0] = '\0';
  if (self_name[0] != '/') { /* loaded by a relative path: relative to the start directory */
    if (syscall(SYS_getcwd, buf, cap - 2) <= 0) return 0;
    len = mp_strlen(buf);
    if (!append(buf, cap, &len, "/")) return 0;
  }
  if (!append(buf, cap, &len, self_name)) return 0;
  if (!suffix) return 1;
  while (len > 0 && buf[len - 1] != '/') len--;
  while (len > 1 && buf[len - 1] == '/') len--;
  size_t dir_end = len, parent = len;
  while (parent > 0 && buf[parent - 1] != '/') parent--;
  const char *last = buf + parent;
  size_t last_len = dir_end - parent;
  int unclear = parent == 0 || last_len == 0 || (last_len == 1 && last[0] == '.') ||
                (last_len == 2 && last[0] == '.' && last[1] == '.');
  len = unclear ? dir_end : parent;
  buf[len] = '\0';
  return append(buf, cap, &len, unclear ? "/../.mambapatch" : ".mambapatch") && append(buf, cap, &len, suffix);
}

static void watch_setup(void) {
  char path[sizeof watch->hook_path];
  struct stat hook_st, self;
  if (!self_name[0]) return;
  /* Without `mambapatch hook install` this is one failed lstat and nothing else. */
  if (!state_path(path, sizeof path, "/hook.sh") || syscall(SYS_newfstatat, AT_FDCWD, path, &hook_st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (!state_path(path, sizeof path, NULL) || syscall(SYS_newfstatat, AT_FDCWD, path, &self, 0) != 0) return;
  if (!trusted_stat(&hook_st, 0, self.st_uid)) return;
  if (!state_path(path, sizeof path, "") || !trusted(path, 1, self.st_uid)) return;
  if (!state_path(path, sizeof path, "/watch") || !trusted(path, 0, self.st_uid)) return;
  void *m = (void *)syscall(SYS_mmap, NULL, sizeof *watch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
  if (m == MAP_FAILED) return;
  watch = m;
  if (!state_path(watch->hook_path, sizeof watch->hook_path, "/hook.sh")) return;

  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  char *text = watch->text;
  size_t got = 0;
  while (got < sizeof watch->text - 1) {
    long r = syscall(SYS_read, (int)fd, text + got, sizeof watch->text - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  syscall(SYS_close, (int)fd);
  text[got] = '\0';

  for (char *p = text; *p && watch_count < MAX_WATCH;) {
    char *start = p;
    while (*p && *p != '\n') p++;
    if (*p) *p++ = '\0';
    if (start[0] != '/') continue; /* absolute paths only; blank lines ignored */
    watch->paths[watch_count] = start;
    watch->ids[watch_count] = identify(start);
    watch_count++;
  }
  watch_pid = (pid_t)syscall(SYS_getpid);
}

static int same(const struct identity *a, const struct identity *b) {
  if (a->exists != b->exists) return 0;
  return !a->exists || (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                        a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec);
}

static void run_hook(void) {
  char *child_env[1024]; /* in the forked child: its stack is its own */
  static char no_hook[] = "MAMBAPATCH_NO_HOOK=1";
  char *argv[] = {"sh", watch->hook_path, NULL};
  strip_preload();
  size_t n = 0;
  for (char **e = environ; e && *e && n < sizeof child_env / sizeof *child_env - 2; e++)
    if (!mp_startswith(*e, "MAMBAPATCH_NO_HOOK=")) child_env[n++] = *e;
  child_env[n++] = no_hook;
  child_env[n] = NULL;
  syscall(SYS_dup3, 2, 1, 0); /* its output goes to stderr: mamba's stdout may be JSON */
  syscall(SYS_execve, "/bin/sh", argv, child_env);
  syscall(SYS_exit_group, 127);
}

__attribute__((destructor)) static void mambapatch_fini(void) {
  if (watch_count == 0 || (pid_t)syscall(SYS_getpid) != watch_pid) return; /* not in forked children */
  int count = watch_count, saved = errno;
  watch_count = 0; /* once */
  if (env_is_1("MAMBAPATCH_NO_HOOK")) return;
  for (int i = 0; i < count; i++) {
    struct identity now = identify(watch->paths[i]);
    if (same(&now, &watch->ids[i])) continue;
    struct mp_line l;
    l.len = 0;
    mp_add(&l, "mambapatch: ");
    mp_add(&l, watch->paths[i]);
    mp_add(&l, " was replaced; re-applying the patch with ");
    mp_add(&l, watch->hook_path);
    emit(&l);
    /* fork without running the program's atfork handlers in an exiting process: the child only execs */
    long pid = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    if (pid == 0) run_hook();
    if (pid > 0) {
      int status;
      while (syscall(SYS_wait4, pid, &status, 0, 0L) < 0 && errno == EINTR) {
      }
    }
    break;
  }
  errno = saved;
}

/* ---------------------------------------------------------------------------------- constructor */

__attribute__((constructor)) static void mambapatch_init(void) {
  int saved = errno;
  struct survey s = {0, -1, -1};
  dl_iterate_phdr(survey_object, &s);
  /* Before libc in the global search order (preload, first NEEDED of the executable), the loader already
   * binds every object to our wrappers, including ones dlopen'ed later: no GOT is touched. */
  int interposing = s.self_index >= 0 && (s.libc_index < 0 || s.self_index < s.libc_index);
  if (!interposing) {
    dl_iterate_phdr(patch_object, NULL);
    if (env_is_1("MAMBAPATCH_DEBUG")) {
      struct mp_line l;
      l.len = 0;
      mp_add(&l, "mambapatch: loaded after libc: redirected ");
      mp_add_num(&l, redirected, 10, 1);
      mp_add(&l, " GOT entries to the shim");
      emit(&l);
    }
  }
  /* one pass over the environment for what start-up reads (first match, as getenv) */
  const char *preload = NULL, *keep = NULL, *no_hook = NULL;
  for (char **e = environ; e && *e; e++) {
    const char *v = *e;
    if (v[0] == 'L' && !preload && mp_startswith(v, "LD_PRELOAD=")) preload = v + 11;
    if (v[0] != 'M' || !mp_startswith(v, "MAMBAPATCH_")) continue;
    if (!keep && mp_startswith(v + 11, "KEEP_PRELOAD=")) keep = v + 24;
    if (!no_hook && mp_startswith(v + 11, "NO_HOOK=")) no_hook = v + 19;
  }
  if (preload && !(keep && mp_streq(keep, "1"))) strip_preload();
  if (!(no_hook && mp_streq(no_hook, "1"))) watch_setup();
  errno = saved;
}
