/*
 * mambapatch rules: the one source of the decisions that the shim (templates/shim/mambapatch_shim.c) and
 * the supervisor blob (templates/supervisor/mambapatch_hook.c) make about a refused call. Pure functions
 * of their arguments: no system calls, no libc, no globals, so both a libc-linked library and a
 * freestanding blob can include it.
 *
 *   Modes: a refused chmod is reported as done only when it would not make the file more open than it is
 *   and would not take away anything its owner or group has (mp_mode_already_allows).
 *   Times: a refused explicit time is retried as a touch to now only when every explicit time in the
 *   request is within MAMBAPATCH_TIME_WINDOW seconds (default 10) of now; UTIME_OMIT/UTIME_NOW entries
 *   are not explicit times (mp_only_now_requested).
 *   Messages: the MAMBAPATCH_DEBUG line for each fallback (mp_line_mode_ok, mp_line_touched), built on the
 *   stack; the caller writes it with one write(2).
 */
#ifndef MAMBAPATCH_RULES_H
#define MAMBAPATCH_RULES_H

#define MP_RULE_TIME_WINDOW_DEFAULT 10L
#define MP_RULE_UTIME_NOW ((1L << 30) - 1L)  /* the kernel's UTIME_NOW */
#define MP_RULE_UTIME_OMIT ((1L << 30) - 2L) /* the kernel's UTIME_OMIT */
#define MP_RULE_S_ISGID 02000u

/* A time as the rules see it (struct timespec's two fields; the callers convert). */
struct mp_rule_time {
  long long sec;
  long nsec;
};

/*
 * The current mode (permission and special bits, 07777) already gives what `requested` asks for: owner
 * and group bits identical, the current "other" bits a subset of the requested ones, every requested
 * set-uid/set-gid/sticky bit already present, and no unrequested special bit present except set-gid on a
 * directory.
 */
static inline int mp_mode_already_allows(unsigned current, unsigned requested, int is_dir) {
  unsigned cur = current & 07777u, req = requested & 07777u;
  if ((cur & 0770u) != (req & 0770u)) return 0;
  if (cur & 07u & ~req) return 0;
  if (req & 07000u & ~cur) return 0;
  unsigned extra = cur & 07000u & ~req;
  return extra == 0 || (extra == MP_RULE_S_ISGID && is_dir);
}

/* MAMBAPATCH_TIME_WINDOW's value (NULL when unset): whole seconds, else the default. */
static inline long mp_time_window(const char *v) {
  long w = 0;
  if (!v || !*v) return MP_RULE_TIME_WINDOW_DEFAULT;
  for (; *v; v++) {
    if (*v < '0' || *v > '9' || w > 100000000L) return MP_RULE_TIME_WINDOW_DEFAULT;
    w = w * 10 + (*v - '0');
  }
  return w;
}

/* `t` is a valid time within `window` seconds of `now`. */
static inline int mp_near_now(const struct mp_rule_time *t, const struct mp_rule_time *now, long window) {
  if (t->nsec < 0 || t->nsec >= 1000000000L) return 0;
  long long ds = t->sec - now->sec;
  if (ds > window + 1 || ds < -window - 1) return 0;
  long long dns = ds * 1000000000LL + (t->nsec - now->nsec);
  long long w = (long long)window * 1000000000LL;
  return dns <= w && dns >= -w;
}

/*
 * May a refused request for these two times (access, modification; NULL = a plain touch) be retried as
 * a touch to now? Only if it asked for (about) now: every entry UTIME_OMIT, UTIME_NOW or near now.
 */
static inline int mp_only_now_requested(const struct mp_rule_time ts[2], const struct mp_rule_time *now, long window) {
  if (!ts) return 0; /* a plain touch was refused: nothing else to try */
  for (int i = 0; i < 2; i++) {
    if (ts[i].nsec == MP_RULE_UTIME_OMIT || ts[i].nsec == MP_RULE_UTIME_NOW) continue;
    if (!mp_near_now(&ts[i], now, window)) return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------------------------- debug lines */

/* One line built on the stack: no allocation, no stdio. Large enough for a path of PATH_MAX bytes. */
struct mp_line {
  char buf[4400];
  unsigned long len;
};

static inline void mp_add(struct mp_line *l, const char *s) {
  while (*s && l->len < sizeof l->buf - 1) l->buf[l->len++] = *s++;
}

static inline void mp_add_num(struct mp_line *l, unsigned long v, unsigned base, int width) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789"[v % base];
    v /= base;
  } while (v && n < (int)sizeof tmp);
  while (n < width && n < (int)sizeof tmp) tmp[n++] = '0';
  while (n > 0 && l->len < sizeof l->buf - 1) l->buf[l->len++] = tmp[--n];
}

/* "mambapatch: utimensat(/path" or "mambapatch: futimens(fd 3" */
static inline void mp_add_target(struct mp_line *l, const char *fn, const char *path, long fd) {
  mp_add(l, "mambapatch: ");
  mp_add(l, fn);
  mp_add(l, "(");
  if (path) {
    mp_add(l, path);
  } else {
    mp_add(l, "fd ");
    mp_add_num(l, (unsigned long)(fd < 0 ? 0 : fd), 10, 1);
  }
}

/* A refused chmod reported as done. */
static inline void mp_line_mode_ok(struct mp_line *l, const char *fn, const char *path, long fd, unsigned mode, unsigned current) {
  l->len = 0;
  mp_add_target(l, fn, path, fd);
  mp_add(l, ", ");
  mp_add_num(l, mode & 07777u, 8, 4);
  mp_add(l, "): refused (EPERM); current mode ");
  mp_add_num(l, current & 07777u, 8, 4);
  mp_add(l, " already allows it: reporting success");
}

/* A refused explicit time retried as a touch to now; err: 0, or the touch's errno. */
static inline void mp_line_touched(struct mp_line *l, const char *fn, const char *path, long fd, int err) {
  l->len = 0;
  mp_add_target(l, fn, path, fd);
  mp_add(l, "): explicit time refused (EPERM); touched to now instead: ");
  if (err == 0) {
    mp_add(l, "ok");
  } else {
    mp_add(l, "errno ");
    mp_add_num(l, (unsigned long)err, 10, 1);
  }
}

#endif
