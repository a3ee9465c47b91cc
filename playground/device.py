"""Which device and dtype the models run on.

CUDA if available (bfloat16), else Apple's MPS (float32), else the CPU (float32). The choice can be
forced with `--device` on the app/CLI or the `PLAYGROUND_DEVICE` environment variable
(`cuda`, `mps`, `cpu`, `auto`). Dtype can be forced with `PLAYGROUND_DTYPE` (`float32`, `bfloat16`,
`float16`). What it leaves out: moving models (`playground.models` does) and several devices
at once (one device per process).
"""

from __future__ import annotations

import torch

from playground import settings
from playground.errors import PlaygroundError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(requested: str | None = None) -> torch.device:
    """The device to use: `requested`, else $PLAYGROUND_DEVICE, else the best available one."""
    choice = (requested or settings.current().device or "auto").lower()
    if choice not in DEVICE_CHOICES:
        raise PlaygroundError(f"Unknown device {choice!r}. Choose one of: {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise PlaygroundError("Device 'cuda' was requested but no CUDA GPU is available.")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise PlaygroundError("Device 'mps' was requested but MPS is not available.")
    return torch.device(choice)


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA, float32 elsewhere, unless $PLAYGROUND_DTYPE says otherwise."""
    forced = settings.current().dtype
    if forced:
        if forced not in _DTYPES:
            raise PlaygroundError(f"Unknown dtype {forced!r}. Choose one of: {', '.join(_DTYPES)}")
        return _DTYPES[forced]
    return torch.bfloat16 if device.type == "cuda" else torch.float32
