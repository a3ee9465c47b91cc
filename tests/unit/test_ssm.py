"""The state-space layer of the "Sequence models" slides: the recurrence and the unrolled matrix agree."""

from __future__ import annotations

import torch

from playground.inside import ssm


def test_the_recurrence_and_the_unrolled_matrix_give_the_same_outputs():
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(64, generator=generator, dtype=torch.float64)
    demo = ssm.state_space_demo(u)
    assert demo.max_difference < 1e-6  # the bound; in float64 it is ~1e-16
    assert torch.allclose(demo.recurrent_y, demo.unrolled_y, atol=1e-12)


def test_the_matrix_is_lower_triangular_and_depends_only_on_the_distance():
    layer = ssm.stated_layer(states=8)
    m = ssm.mixing_matrix(layer, 12)
    assert torch.equal(torch.triu(m, diagonal=1), torch.zeros_like(m))  # nothing from the future
    k = ssm.kernel(layer, 12)
    for t in range(12):
        for s in range(t + 1):
            assert m[t, s] == k[t - s]
    # K_0 = C B = sum of C (B = 1): (-1)^n / N over 8 states is 0; K_1 = sum C_n A_n
    assert abs(float(k[0])) < 1e-15 and abs(float(k[1]) - float((layer.c * layer.a).sum())) < 1e-15


def test_one_step_by_hand():
    layer = ssm.StateSpaceLayer(a=torch.tensor([0.5], dtype=torch.float64), b=torch.tensor([2.0], dtype=torch.float64),
                                c=torch.tensor([3.0], dtype=torch.float64))
    y = ssm.recurrent(layer, torch.tensor([1.0, 0.0, 1.0]))
    # x1 = 2, x2 = 1, x3 = 0.5 + 2 = 2.5; y = 3x
    assert y.tolist() == [6.0, 3.0, 7.5]


def test_the_state_does_not_grow_with_the_text():
    demo_short = ssm.state_space_demo(torch.ones(8))
    demo_long = ssm.state_space_demo(torch.ones(512))
    assert demo_short.state_bytes(576, 30) == demo_long.state_bytes(576, 30) == 16 * 576 * 30 * 2


def test_the_inside_tab_runs_the_layer_on_the_looked_text_without_a_model_call():
    """Section 6 of the Inside tab: the note gives the difference of the two ways (tiny), the matrix
    chart is blank above the diagonal, and the memory chart's state line is flat."""
    import json
    import math
    import re

    from playground.models import load_model
    from playground.ui import inside_tab

    looked = inside_tab.look_inside("Hello there, general Kenobi.", "tiny-random", 0, 0)[0]
    loaded = load_model("tiny-random")
    calls = loaded.forward_calls
    note, matrix_plot, memory_plot = inside_tab.show_state_space(looked)
    difference = float(re.search(r"largest difference \*\*([0-9.e+-]+)\*\*", note).group(1))
    assert difference < 1e-6
    z = json.loads(matrix_plot.plot)["data"][0]["z"]
    assert z  # drawn; the values are encoded (typed array), the upper triangle is NaN
    state = json.loads(memory_plot.plot)["data"][1]["y"]
    assert len(set(state)) == 1 and not math.isnan(state[0])
    assert loaded.forward_calls == calls
