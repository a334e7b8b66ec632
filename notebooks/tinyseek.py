"""Small helpers for the tinyseek notebooks: find the build, run the command, load the library.

The notebooks drive the real C code; they never reimplement it in Python.

    import tinyseek as ts
    ts.run("data", "--out", ts.runs("nb01/data"))        # the `tinyseek` command; returns stdout
    lib = ts.lib()                                       # libtinyseek.so through ctypes
    ts.backend()                                         # "openblas (...)" or "c loops"
    v = ts.View(); lib.some_view_fn(..., ctypes.byref(v)); ts.as_array(v)   # a ts_view as NumPy
    rows = ts.read_csv("runs/ch01/merges.csv")           # list of dicts
    ts.QUICK                                             # True under `make notebooks`

Where things are:
    TINYSEEK_ROOT   the repository (default: the folder above this file)
    TINYSEEK_BUILD  the build folder, relative to the root (default build/release)
    TINYSEEK_QUICK  "1": use small sizes (set by scripts/run-notebooks.sh)
"""
import csv
import ctypes
import os
import shlex
import subprocess
import time

ROOT = os.path.abspath(os.environ.get("TINYSEEK_ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BUILD = os.path.join(ROOT, os.environ.get("TINYSEEK_BUILD", "build/release"))
QUICK = os.environ.get("TINYSEEK_QUICK", "0") not in ("", "0", "no", "false")


class TinyseekError(RuntimeError):
    """A `tinyseek` run failed; the message is the command's own one-line error."""


def path(*parts):
    """A path under the repository root."""
    return os.path.join(ROOT, *parts)


def runs(*parts, make=True):
    """A folder under runs/ (gitignored), created on demand."""
    p = path("runs", *parts)
    if make:
        os.makedirs(p, exist_ok=True)
    return p


def binary():
    """Path of the `tinyseek` command; a clear error if it was not built."""
    b = os.path.join(BUILD, "tinyseek")
    if not os.access(b, os.X_OK):
        raise FileNotFoundError(f"{b} not found: run `make` in {ROOT} first")
    return b


def run(*args, check=True, echo=True, timeout=None):
    """Run `tinyseek ARGS...` from the repository root and return its stdout.

    Arguments are converted with str(). With echo, the command line and the time
    it took are printed, so a notebook shows exactly what ran. On failure raises
    TinyseekError with the command's stderr (its one-line message).
    """
    argv = [binary()] + [str(a) for a in args]
    if echo:    # paths shown relative to the root (the command runs there), as a reader would type them
        print("$ tinyseek " + " ".join(shlex.quote(a.replace(ROOT + os.sep, "")) for a in argv[1:]))
    t0 = time.time()
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=timeout)
    if echo:
        print(f"  ({time.time() - t0:.2f} s, exit {p.returncode})")
    if check and p.returncode != 0:
        msg = p.stderr.strip().splitlines()
        raise TinyseekError(msg[-1] if msg else f"tinyseek {args[0] if args else ''} exited with {p.returncode}")
    return p.stdout


_lib = None


def lib():
    """libtinyseek.so through ctypes, with the return types of the functions used here declared."""
    global _lib
    if _lib is None:
        so = os.path.join(BUILD, "libtinyseek.so")
        if not os.path.exists(so):
            raise FileNotFoundError(f"{so} not found: run `make` in {ROOT} first")
        _lib = ctypes.CDLL(so)
        _lib.ts_matmul_backend.restype = ctypes.c_char_p
        _lib.ts_matmul_backend.argtypes = []
        _lib.ts_num_threads.restype = ctypes.c_int
        _lib.ts_num_threads.argtypes = []
        _lib.ts_last_error.restype = ctypes.c_char_p
        _lib.ts_last_error.argtypes = []
    return _lib


def backend():
    """The matmul backend compiled into the library, e.g. "openblas (SkylakeX)" or "c loops"."""
    return lib().ts_matmul_backend().decode()


class View(ctypes.Structure):
    """ctypes mirror of ts_view (src/core/arena.h): a named, shaped view of floats."""
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.POINTER(ctypes.c_float)),
                ("ndim", ctypes.c_int), ("shape", ctypes.c_int * 4)]

    @property
    def dims(self):
        """The shape as a tuple."""
        return tuple(self.shape[i] for i in range(self.ndim))


def as_array(view):
    """A NumPy array over a View's floats (no copy: valid while the C side keeps them)."""
    import numpy as np
    if not view.data:
        raise ValueError(f"view {view.name!r} has no data")
    return np.ctypeslib.as_array(view.data, shape=view.dims)


def read_csv(p):
    """Rows of a CSV file with a header row, as dicts of strings (relative paths are under the root)."""
    with open(p if os.path.isabs(p) else path(p), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pick(quick, full):
    """`quick` under the quick profile (make notebooks), `full` otherwise."""
    return quick if QUICK else full
