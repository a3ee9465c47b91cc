"""Counts the operators a computation dispatches: on a GPU, each one is a kernel launch.

Small models on a GPU are bound by how many kernels a step launches, not by arithmetic, so this
count is a device-independent measure of the fast path (the bench reports it, tests bound it).
Views (reshape, transpose, slicing) compute nothing and are not counted. What it leaves out:
timing, and kernels that one operator launches internally.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


def count_operators(run) -> int:
    """How many non-view operators `run()` dispatches (run under inference mode)."""
    with torch.inference_mode(), _Counter() as counter:
        run()
    return counter.count
