"""Builds and loads the float32 low-bit matmul of `lowbit_mm.cpp` (torch.ops.playground_lowbit).

The C++ file is compiled once per machine by torch's extension builder (g++ and ninja, -O3
-march=native: about 15 s) into the playground's cache directory, under a key made of the source,
torch's version and this CPU's instruction-set flags, so every later process (and a CI run on the same
machine) loads the built library in well under a second; concurrent first builds wait for one another
(the builder's lock file; one left by a killed build is dropped after 5 minutes). `available()` says whether the ops are there and, if not, why in words.
What it leaves out: the kernel itself (`lowbit_mm.cpp`), prebuilt binaries, Windows compilers, GPUs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
import shutil
import time
from pathlib import Path

import torch

from playground import settings

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("lowbit_mm.cpp")
STALE_LOCK_SECONDS = 300.0  # a build takes about 15 s
FLAGS = ["-O3", "-march=native", "-ffp-contract=off"]  # off: rebuilt weights round as the file's do


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def build_directory() -> Path:
    """Where this machine's build lives (one per source, torch version and CPU)."""
    key = hashlib.sha256("\n".join([SOURCE.read_text(), torch.__version__, platform.machine(), _cpu_flags(),
                                    *FLAGS]).encode()).hexdigest()[:16]
    return settings.current().cache_path / "kernels" / f"lowbit-{key}"


def _drop_stale_lock(directory: Path, seconds: float = STALE_LOCK_SECONDS) -> None:
    """Remove the builder's lock file when it is older than any build takes: a build killed halfway
    leaves it behind, and the builder would wait for it forever."""
    lock = directory / "lock"
    try:
        if time.time() - lock.stat().st_mtime > seconds:
            lock.unlink()
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(True, "") once the ops are loaded (building them on first use), else (False, why)."""
    if hasattr(torch.ops, "playground_lowbit") and hasattr(torch.ops.playground_lowbit, "mm"):
        return True, ""
    if shutil.which("g++") is None or shutil.which("ninja") is None:
        return False, "building the low-bit kernel needs g++ and ninja, which this machine lacks"
    from torch.utils import cpp_extension  # imported here: it pulls in setuptools

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    _drop_stale_lock(directory)
    try:
        cpp_extension.load(name="playground_lowbit", sources=[str(SOURCE)], extra_cflags=FLAGS,
                           build_directory=str(directory), is_python_module=False, verbose=False)
    except Exception as exc:  # noqa: BLE001 - a failed build leaves float32 weights, said in words
        log.warning("low-bit kernel build failed: %r", exc)
        return False, f"the low-bit kernel did not build here ({type(exc).__name__}: {str(exc)[:200]})"
    return True, ""
