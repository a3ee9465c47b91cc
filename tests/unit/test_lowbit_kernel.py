"""Building and loading the low-bit kernel (playground.lowbit_kernel): where it is built, and the
lock a killed build leaves behind."""

from __future__ import annotations

import os
import shutil
import time

from playground import lowbit_kernel


def test_the_build_directory_depends_on_the_source_and_lies_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_CACHE_DIR", str(tmp_path))
    first = lowbit_kernel.build_directory()
    assert first.parent == tmp_path / "kernels"
    monkeypatch.setattr(lowbit_kernel, "FLAGS", [*lowbit_kernel.FLAGS, "-DCHANGED"])
    assert lowbit_kernel.build_directory() != first


def test_a_lock_left_by_a_killed_build_is_dropped_and_a_fresh_one_kept(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    lowbit_kernel._drop_stale_lock(tmp_path)
    assert lock.exists()  # a build may be running now
    old = time.time() - lowbit_kernel.STALE_LOCK_SECONDS - 10
    os.utime(lock, (old, old))
    lowbit_kernel._drop_stale_lock(tmp_path)
    assert not lock.exists()


def test_the_kernel_builds_where_there_is_a_compiler_and_otherwise_says_why():
    built, why = lowbit_kernel.available()
    if shutil.which("g++") and shutil.which("ninja"):
        assert built, why
    else:
        assert not built and "g++ and ninja" in why
