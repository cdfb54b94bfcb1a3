"""The optional C kernels (csr_kernels.c): compiled once per machine, loaded with ctypes.

No build step at install: the first use compiles the file with the system C compiler (about a
second) into a cache keyed by the source, the flags and the CPU (so `-march=native` code never
runs on another CPU model sharing the cache), and later uses load it. Without a compiler,
`library()` returns None and the torch.sparse kernels serve alone. `.ci/setup` warms the cache:
`native.warm()`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("csr_kernels.c")
FLAG_SETS = (["-O3", "-march=native", "-fno-math-errno"], ["-O3", "-fno-math-errno"])  # the second where -march=native is refused
CACHE_ENV = "DSRL_KERNEL_CACHE"

_library: ctypes.CDLL | None = None
_failure: str | None = None  # why there is no library, once a build was tried


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dsrl-platform" / "kernels")


def _cpu_signature() -> str:
    info = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info = "".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        pass
    return f"{platform.machine()}|{platform.processor()}|{info}"


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _build(compiler: str) -> tuple[Path | None, str]:
    errors = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(SOURCE.read_bytes() + repr((compiler, flags)).encode()
                             + _cpu_signature().encode()).hexdigest()[:20]
        target = cache_dir() / f"csr_kernels-{key}.so"
        if target.exists():
            return target, ""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # same file system: os.replace is atomic
            out = Path(tmp) / target.name
            run = subprocess.run([compiler, *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(out), "-lm"],
                                 capture_output=True, text=True, timeout=120)
            if run.returncode == 0:
                os.replace(out, target)
                return target, ""
            errors.append(run.stderr.strip().splitlines()[-1:] or ["failed"])
    return None, f"{compiler}: {errors[-1][0]}"


def library() -> ctypes.CDLL | None:
    """The loaded kernels, building them on first use; None (see `failure()`) without a compiler."""
    global _library, _failure
    if _library is not None or _failure is not None:
        return _library
    compiler = _compiler()
    if compiler is None:
        _failure = "no C compiler (set CC)"
        return None
    try:
        path, _failure = _build(compiler)
        if path is not None:
            _library = _declare(ctypes.CDLL(str(path)))
            _failure = None
    except (OSError, subprocess.SubprocessError) as err:
        _failure = f"{type(err).__name__}: {err}"
    return _library


def failure() -> str | None:
    return _failure


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.sparse_forward.argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr]
    lib.sparse_backward.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr]
    dbl = ctypes.c_double
    lib.adam_at.argtypes = [i64, ptr, ptr, ptr, ptr, ptr, ptr, dbl, dbl, dbl, dbl, dbl]
    lib.sparse_forward.restype = lib.sparse_backward.restype = lib.adam_at.restype = None
    return lib


def warm() -> None:
    """Build the kernels into the cache now (.ci/setup); never fails the install."""
    lib = library()
    print(f"sparse kernels: {'built, ' + str(cache_dir()) if lib else 'not built (' + str(failure()) + '); torch.sparse only'}")
