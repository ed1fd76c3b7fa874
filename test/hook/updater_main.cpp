// A mamba 2.x stand-in that updates itself while it runs, as `mamba update mamba` does: it links the
// libmamba stand-in, runs its install, then, with STANDIN_UPDATE_FROM=<file>, writes that file beside its
// own executable and renames it over (a new inode, like a package update). STANDIN_EXIT=<n> sets the exit
// status, so a test can see that nothing after main() changes it.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" int standin_install(const char *prefix);

static bool copy_over(const char *from, const std::string &to) {
  std::string tmp = to + ".update";
  int in = open(from, O_RDONLY);
  int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0775);
  if (in < 0 || out < 0) return false;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, n) != n) return false;
  close(in);
  fchmod(out, 0775);
  close(out);
  return rename(tmp.c_str(), to.c_str()) == 0;
}

int main() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 2;
  exe[n] = '\0';
  std::string prefix = exe;
  for (int up = 0; up < 2; ++up) prefix = prefix.substr(0, prefix.rfind('/'));
  int rc = standin_install(prefix.c_str());
  if (const char *from = std::getenv("STANDIN_UPDATE_FROM")) {
    if (!copy_over(from, exe)) {
      std::perror("stand-in update");
      return 2;
    }
    std::puts("stand-in: updated bin/mamba");
  }
  if (const char *code = std::getenv("STANDIN_EXIT")) return std::atoi(code);
  return rc;
}
