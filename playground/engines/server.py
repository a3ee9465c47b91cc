"""Starts llama.cpp's `llama-server` on a free loopback port for one GGUF file (tests, benchmarks).

`LlamaServer(gguf)` is a context manager: it starts the binary `engines.build.find_server()` gives
(built once by `python -m playground.engines.build`), waits until `/health` answers 200 (the model
is loaded), and stops the process on exit (terminate, then kill). Its output goes to a log file
whose tail is in the error when the server does not come up. `config()` is the `EngineConfig` of
the running server. What it leaves out: building the binary, serving on other hosts, GPU offload.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from playground.engines.build import find_server
from playground.engine_config import EngineConfig, engine_config
from playground.errors import PlaygroundError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    def __init__(self, gguf: str | Path, context: int = 2048, threads: int = 2, slots: int = 1,
                 extra_args: tuple[str, ...] = (), startup_seconds: float = 180.0, binary: Path | None = None):
        self.gguf = Path(gguf)
        self.binary = binary or find_server()
        if self.binary is None:
            raise PlaygroundError("llama-server is not built: run `python -m playground.engines.build` "
                                  "(or `make llama-server`), or set PLAYGROUND_LLAMA_SERVER.")
        self.port = free_port()
        self.args = [str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
                     "-c", str(context), "-t", str(threads), "-np", str(slots), "--no-webui", *extra_args]
        self.startup_seconds = startup_seconds
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **capabilities) -> EngineConfig:
        return engine_config("llama.cpp", self.base_url, "", **capabilities)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def start(self) -> "LlamaServer":
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PlaygroundError(f"llama-server exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise PlaygroundError(f"llama-server did not become healthy within {self.startup_seconds:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
