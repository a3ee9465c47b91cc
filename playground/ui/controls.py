"""Shared sampling controls: temperature, top-k, top-p, min-p, seed, order and the lecture presets.

`sampling_controls()` lays the widgets out where it is called (inside a Blocks/Tab context) and
returns a `SamplingControls` dataclass of the components. One click on a preset button sets the
sliders to the lecture's Ollama Modelfile values (`playground.sampling.PRESETS`). To read the
controls in a handler, pass `controls.inputs` as event inputs and turn the values into settings
with `settings_from_values(*values)` (the first five values; the seed is `seed_from_value`).

    controls = sampling_controls()
    button.click(handler, inputs=[prompt, *controls.inputs], ...)

    def handler(prompt, temperature, top_k, top_p, min_p, order, seed):
        settings = settings_from_values(temperature, top_k, top_p, min_p, order)

`controls.changes` lists the components whose change should re-filter a distribution (all but
the seed). What it leaves out: anything that runs a model; each tab wires its own handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.errors import PlaygroundError
from playground.limits import clamp_float, clamp_int
from playground.sampling import ORDERS, PRESETS, SamplingSettings

TEMPERATURE_SLIDER_MAX = 5.0
DEFAULT_SEED = 42
ORDER_LABELS = {
    "transformers": "temperature first (transformers, Ollama)",
    "temperature_last": "temperature last (llama.cpp)",
}
ORDER_NOTE = ("Temperature last: top-k, top-p and min-p see the unscaled distribution, so temperature "
              "only reshapes the kept tokens, never which ones are kept.")


@dataclass
class SamplingControls:
    temperature: gr.Slider
    top_k: gr.Number
    top_p: gr.Slider
    min_p: gr.Slider
    order: gr.Radio
    seed: gr.Number
    preset_buttons: dict[str, gr.Button]

    @property
    def inputs(self) -> list:
        """Event inputs, in the order `settings_from_values` (first five) and the seed expect."""
        return [self.temperature, self.top_k, self.top_p, self.min_p, self.order, self.seed]

    @property
    def settings_inputs(self) -> list:
        """The five components that define a `SamplingSettings` (no seed)."""
        return [self.temperature, self.top_k, self.top_p, self.min_p, self.order]

    @property
    def changes(self) -> list:
        """Components whose change should re-filter the distribution."""
        return self.settings_inputs


TOP_K_LIMIT = 10_000_000  # above any vocabulary: top-k that large is simply "off"
INF = float("inf")
MAX_SEED = 2**63 - 1


def settings_from_values(temperature, top_k, top_p, min_p, order="transformers") -> SamplingSettings:
    """SamplingSettings from raw widget (or API) values, validated on the server.

    Blank values fall back to "off" (temperature 1, top-k off, top-p 1, min-p 0). NaN, infinities,
    strings that are not numbers, values outside a rule's range and unknown orders get a clear
    message (`PlaygroundError`); a top-k above any vocabulary is simply "off".
    """
    temperature = clamp_float(temperature, "temperature", -INF, INF, default=1.0)
    top_k = clamp_int(top_k, "top-k", -TOP_K_LIMIT, TOP_K_LIMIT, default=0)
    top_p = clamp_float(top_p, "top-p", -INF, INF, default=1.0)
    min_p = clamp_float(min_p, "min-p", -INF, INF, default=0.0)
    order = order or "transformers"
    if not isinstance(order, str) or order not in ORDERS:
        raise PlaygroundError(f"order must be one of {', '.join(ORDERS)}, not {str(order)[:40]!r}.")
    return SamplingSettings(temperature=temperature, top_k=top_k or None, top_p=top_p, min_p=min_p, order=order)


def seed_from_value(seed) -> int:
    """The seed as an int (blank -> the default seed; huge values are clamped; negative refused)."""
    if seed in (None, ""):
        return DEFAULT_SEED
    number = clamp_float(seed, "The seed", -INF, INF)
    if number < 0:
        raise PlaygroundError("The seed must be >= 0.")
    return int(min(number, MAX_SEED))


def preset_values(name: str) -> tuple[float, int, float, float]:
    """(temperature, top_k, top_p, min_p) of a lecture preset."""
    settings = PRESETS[name]
    return settings.temperature, settings.top_k or 0, settings.top_p, settings.min_p


def _preset_setter(name: str):
    def set_preset():
        return preset_values(name)
    return set_preset


def sampling_controls(initial: SamplingSettings | None = None, show_order: bool = True,
                      show_seed: bool = True, elem_prefix: str = "sampling") -> SamplingControls:
    """Create the controls here; presets are wired to set the sliders (no model call)."""
    initial = initial or PRESETS["random"]
    with gr.Row(elem_classes=["sampling-presets"]):
        gr.Markdown("**Lecture presets**", elem_classes=["sampling-presets-label"])
        buttons = {name: gr.Button(name, size="sm", elem_id=f"{elem_prefix}-preset-{name}")
                   for name in PRESETS}
    with gr.Row():
        temperature = gr.Slider(0.0, TEMPERATURE_SLIDER_MAX, value=initial.temperature, step=0.05,
                                label="temperature (0 = greedy)", elem_id=f"{elem_prefix}-temperature")
        top_k = gr.Number(value=initial.top_k or 0, precision=0, minimum=0, label="top-k (0 = off)",
                          elem_id=f"{elem_prefix}-top-k")
        top_p = gr.Slider(0.01, 1.0, value=initial.top_p, step=0.01, label="top-p (1 = off)",
                          elem_id=f"{elem_prefix}-top-p")
        min_p = gr.Slider(0.0, 1.0, value=initial.min_p, step=0.01, label="min-p (0 = off)",
                          elem_id=f"{elem_prefix}-min-p")
    with gr.Row():
        order = gr.Radio([(ORDER_LABELS[o], o) for o in ORDERS], value=initial.order, label="order",
                         info=ORDER_NOTE, visible=show_order, elem_id=f"{elem_prefix}-order")
        seed = gr.Number(value=DEFAULT_SEED, precision=0, minimum=0, label="seed",
                         visible=show_seed, elem_id=f"{elem_prefix}-seed")
    for name, button in buttons.items():
        button.click(_preset_setter(name), inputs=None,
                     outputs=[temperature, top_k, top_p, min_p], api_name=False, queue=False)
    return SamplingControls(temperature, top_k, top_p, min_p, order, seed, buttons)

