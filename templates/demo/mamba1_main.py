"""Stand-in for mamba 1.x's `mamba.mamba` module: loads libmamba through ctypes, as libmambapy does."""
import ctypes
import glob
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    prefix = os.environ.get("MAMBA_ROOT_PREFIX") or os.path.abspath(os.path.join(here, "..", "..", "..", ".."))
    if len(sys.argv) > 1 and sys.argv[1] == "--version":
        print("mamba 1.1.0 (stand-in)")
        return 0
    libs = sorted(glob.glob(os.path.join(prefix, "lib", "libmamba.so.*")))
    lib = ctypes.CDLL(libs[0])
    sys.stdout.flush()
    return lib.standin_install(prefix.encode())
