/* Test driver for the supervisor, linked -static/-static-pie and hooked. Each mode prints one result line.
 *   scenarios thread|child|reexec PATH OCTAL   chmod from a second thread / a forked child / after
 *                                              re-executing /proc/self/exe (prints "rc=.. errno=..")
 *   scenarios relative|at DIR NAME OCTAL      chdir(DIR) + chmod(NAME) / fchmodat(open(DIR), NAME)
 *   scenarios system PATH OCTAL                system("chmod OCTAL PATH") (a grandchild: sh, then /bin/chmod)
 *   scenarios sigint PATH OCTAL                prints "ready", waits in pause(); its SIGINT handler chmods
 *   scenarios blockall PATH OCTAL              every signal blocked in every thread, then chmod in a thread
 *   scenarios ident ARGS...                    argv, environ, /proc/self/exe, pid, fds, a wait for any child
 *   scenarios sleep                            prints "ready", sleeps 60 s
 *   scenarios exit N                           prints "bye" and exits with N
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *g_path;
static mode_t g_mode;

static const char *name(int e) {
  const char *n = e ? strerrorname_np(e) : "0";
  return n ? n : "other";
}

static void do_chmod(char *out, size_t cap) {
  errno = 0;
  int rc = chmod(g_path, g_mode);
  snprintf(out, cap, "rc=%d errno=%s\n", rc, name(rc ? errno : 0));
}

static void *thread_main(void *arg) {
  do_chmod(arg, 64);
  return NULL;
}

static void on_sigint(int sig) {
  (void)sig;
  char out[64];
  do_chmod(out, sizeof out);
  ssize_t r = write(1, out, strlen(out));
  (void)r;
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *op = argv[1];
  char out[64] = "";
  if (!strcmp(op, "exit")) {
    puts("bye");
    return atoi(argv[2]);
  }
  if (!strcmp(op, "sleep")) {
    puts("ready");
    fflush(stdout);
    sleep(60);
    return 0;
  }
  if (!strcmp(op, "ident")) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n < 0 ? 0 : n] = '\0';
    printf("exe=%s\npid=%d\n", exe, (int)getpid());
    DIR *d = opendir("/proc/self/fd");
    int self = dirfd(d);
    struct dirent *ent;
    while ((ent = readdir(d)))
      if (ent->d_name[0] != '.' && atoi(ent->d_name) != self) printf("fd %s\n", ent->d_name);
    closedir(d);
    errno = 0;
    pid_t w = wait(NULL);
    printf("wait=%d errno=%s\n", (int)w, w < 0 && errno == ECHILD ? "ECHILD" : "other");
    return 0;
  }
  if (!strcmp(op, "relative") || !strcmp(op, "at")) {
    mode_t mode = (mode_t)strtol(argv[4], NULL, 8);
    int dfd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (!strcmp(op, "relative") && chdir(argv[2]) != 0) return 3;
    errno = 0;
    int rc = !strcmp(op, "at") ? fchmodat(dfd, argv[3], mode, 0) : chmod(argv[3], mode);
    printf("rc=%d errno=%s\n", rc, name(rc ? errno : 0));
    return 0;
  }
  g_path = argv[2];
  g_mode = (mode_t)strtol(argv[3], NULL, 8);
  if (!strcmp(op, "chmod")) {
    do_chmod(out, sizeof out);
  } else if (!strcmp(op, "thread") || !strcmp(op, "blockall")) {
    if (!strcmp(op, "blockall")) {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, NULL);
    }
    pthread_t t;
    pthread_create(&t, NULL, thread_main, out);
    pthread_join(t, NULL);
  } else if (!strcmp(op, "child")) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    pid_t pid = fork();
    if (pid == 0) {
      do_chmod(out, sizeof out);
      ssize_t r = write(fds[1], out, strlen(out));
      _exit(r < 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof out - 1);
    out[n < 0 ? 0 : n] = '\0';
    waitpid(pid, NULL, 0);
  } else if (!strcmp(op, "system")) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "/bin/chmod %s '%s' 2>/dev/null", argv[3], g_path);
    int st = system(cmd);
    snprintf(out, sizeof out, "status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  } else if (!strcmp(op, "reexec")) {
    char *args[] = {argv[0], "chmod", argv[2], argv[3], NULL};
    execv("/proc/self/exe", args);
    return 4;
  } else if (!strcmp(op, "sigint")) {
    signal(SIGINT, on_sigint);
    puts("ready");
    fflush(stdout);
    for (;;) pause();
  } else {
    return 2;
  }
  fputs(out, stdout);
  return 0;
}
