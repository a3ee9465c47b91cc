"""A state-space layer, the lecture's "Sequence models" slides, run both ways on the same input.

The slide's layer, per channel, with a diagonal A of N states and x_0 = 0:

    x_t = A x_{t-1} + B u_t        y_t = C x_t

- `recurrent(layer, u)`: step by step, carrying the state: what inference does, with a fixed
  memory of N numbers per channel however long the text.
- `kernel(layer, T)`: unrolled, y_t = sum_{s <= t} C A^(t-s) B u_s, so the layer is a causal
  convolution with the kernel K_k = C A^k B (k = 0 .. T-1): what training does, all positions at once.
- `mixing_matrix(layer, T)`: the same as a T x T matrix M[t, s] = K_(t-s) for s <= t, 0 above: a
  lower-triangular "attention-like" matrix whose rows depend only on the distance t - s (the
  slide's "transformer with a more structured attention matrix"); y = M u.
- `state_space_demo(u)`: both ways on one input, their largest difference (float64: ~1e-16), and
  the memory each token costs: the layer's fixed state against a transformer's growing KV cache.

The layer is stated, not trained: A_n = exp(-dt (n + 1/2)) (S4D-Lin's real part, discretised with
step dt = 0.1: each state forgets at its own rate), B_n = 1, C_n = (-1)^n / N. What it leaves out:
selectivity (Mamba's A, B, C depend on the input), several channels mixed, training, and a
continuous-time system's discretisation beyond this one formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StateSpaceLayer:
    a: torch.Tensor  # [N] the diagonal of A
    b: torch.Tensor  # [N]
    c: torch.Tensor  # [N]

    @property
    def states(self) -> int:
        return int(self.a.numel())


def stated_layer(states: int = 16, dt: float = 0.1) -> StateSpaceLayer:
    """The module docstring's layer: A_n = exp(-dt (n + 1/2)), B_n = 1, C_n = (-1)^n / N (float64)."""
    n = torch.arange(states, dtype=torch.float64)
    return StateSpaceLayer(a=torch.exp(-dt * (n + 0.5)), b=torch.ones(states, dtype=torch.float64),
                           c=torch.where(n % 2 == 0, 1.0, -1.0).to(torch.float64) / states)


def recurrent(layer: StateSpaceLayer, u: torch.Tensor) -> torch.Tensor:
    """y_t = C x_t with x_t = A x_(t-1) + B u_t, one step at a time (x_0 = 0)."""
    x = torch.zeros_like(layer.a)
    ys = []
    for u_t in u.to(torch.float64):
        x = layer.a * x + layer.b * u_t
        ys.append(torch.dot(layer.c, x))
    return torch.stack(ys) if ys else torch.zeros(0, dtype=torch.float64)


def kernel(layer: StateSpaceLayer, length: int) -> torch.Tensor:
    """K_k = C A^k B for k = 0 .. length-1 (A diagonal: A^k is elementwise)."""
    k = torch.arange(length, dtype=torch.float64)[:, None]
    return (layer.c * layer.a ** k * layer.b).sum(dim=1)


def mixing_matrix(layer: StateSpaceLayer, length: int) -> torch.Tensor:
    """M[t, s] = K_(t-s) for s <= t, else 0: the unrolled layer as one lower-triangular matrix."""
    k = kernel(layer, length)
    t = torch.arange(length)
    distance = t[:, None] - t[None, :]
    return torch.where(distance >= 0, k[distance.clamp(min=0)], torch.zeros((), dtype=torch.float64))


@dataclass(frozen=True)
class StateSpaceDemo:
    u: torch.Tensor  # [T] the input
    recurrent_y: torch.Tensor  # [T] step by step
    unrolled_y: torch.Tensor  # [T] M u
    matrix: torch.Tensor  # [T, T]
    kernel: torch.Tensor  # [T]
    states: int

    @property
    def max_difference(self) -> float:
        return float((self.recurrent_y - self.unrolled_y).abs().max()) if self.u.numel() else 0.0

    def state_bytes(self, channels: int, layers: int, bytes_per_number: int = 2) -> int:
        """What the layer keeps between tokens: N states per channel, the same at every length."""
        return self.states * channels * layers * bytes_per_number


def state_space_demo(u: torch.Tensor, layer: StateSpaceLayer | None = None) -> StateSpaceDemo:
    """Run the layer both ways on `u` (the recurrence, and the unrolled matrix times u)."""
    layer = layer or stated_layer()
    u = u.to(torch.float64).flatten()
    matrix = mixing_matrix(layer, u.numel())
    return StateSpaceDemo(u, recurrent(layer, u), matrix @ u, matrix, kernel(layer, u.numel()), layer.states)
