// The stand-in for the mamba 2.x executable: an ELF linked to libmamba.so.4 (the stand-in), with the
// root prefix found the way mamba 2.x finds it: MAMBA_ROOT_PREFIX, else two levels above the executable.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

extern "C" int standin_install(const char *prefix);

int main(int argc, char **argv) {
  std::string prefix;
  if (const char *env = std::getenv("MAMBA_ROOT_PREFIX"); env && *env) {
    prefix = env;
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 2;
    exe[n] = '\0';
    prefix = exe;
    for (int up = 0; up < 2; ++up) prefix = prefix.substr(0, prefix.rfind('/'));
  }
  if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
    std::puts("2.3.0 (stand-in)");
    return 0;
  }
  return standin_install(prefix.c_str());
}
