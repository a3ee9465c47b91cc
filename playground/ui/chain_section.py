"""The Sampling lab's sampler chain section: a chain editor and the funnel, stage by stage.

An accordion under the lab's distribution: a chain preset (transformers, llama.cpp default,
Ollama, KoboldCpp, the lecture's five), the chain as text in llama.cpp's names (edit and press
Enter), a stage picker with Up / Down / Remove, and a sampler picker with Add. The funnel chart
(`playground.plots.chain`) and the table (`playground.html.chain`) show what each stage keeps:
count, the model's mass on it, the entropy, the top tokens. The chain runs on the lab's cached
distribution after the session's text (`decoding.ranked_after`): editing it never calls the model,
and the funnel follows the lab (Show distribution, Next token, Undo, the end of a generation): `follow`
runs it after each of the lab's events that change the text, never on a streamed step (a generation
would otherwise send two more requests with every frame). `build(state)` and `follow(parts, events)`
are the hooks `sampling_tab.build` calls.

Below it, A/B on the same dice: chain A (the chain above) and chain B continue the lab's text for N
tokens on one seed (`samplers.ab.ab_after`), drawn as two strips with the first divergence marked.

Deep links (`extend_link`): `chain`, `chain_b`, `ab_seed`, `ab_tokens`, `run=chain` / `run=ab`,
`view=chain` / `view=ab`.

Last, the session's branching tree (`samplers.tree`): every token the lab chose from this prompt, a
new branch where a different token follows an undo, drawn with each node's probability and the
current path, exported as JSON; it follows the lab the same way. A click on a node
brings the lab back to it (`sampling_tab.return_to_node`, with the tree state this section returns).

K samples A/B draw the next token K times per side on the same K uniform numbers (as the CLI's
`ab --samples K`), drawn as two histograms side by side.

What it leaves out: the chain itself (`playground.samplers`).
"""

from __future__ import annotations

import gradio as gr
from gradio.components.plot import PlotData

from playground.backends import backend_for
from playground.errors import PlaygroundError
from playground.html import chain as chain_html
from playground.plots import chain as chain_plots
from playground.plots.sampling import spec_json
from playground.samplers import ab as chain_runs
from playground.samplers.chain import (ADD_DEFAULTS, PRESETS, Chain, add_stage, chain_from, format_chain,
                                       move_stage, remove_stage)
from playground.limits import clamp_int
from playground.samplers.tree import observe, tree_dict
from playground.token_text import display_text, token_bytes
from playground.ui.common import user_errors

DEFAULT_PRESET = "llama.cpp default"
HINT = "Press “Show distribution” above: the chain then runs on the lab's distribution, stage by stage."
CSS = chain_html.CSS + chain_html.AB_CSS
MAX_AB_TOKENS = 64
MAX_AB_K = 256  # K samples A/B in the page (the CLI takes up to samplers.ab.MAX_AB_SAMPLES)
DEFAULT_B = "top_k=40;temperature=1.5"


def _stage_choices(chain: Chain) -> list[tuple[str, int]]:
    return [(f"{i + 1}. {stage.name}", i) for i, stage in enumerate(chain.stages)]


def _funnel(session, chain: Chain) -> tuple[PlotData, str]:
    backend_for(session.model_id).require("sampler_chain")
    ids = session.ids
    rows, run = chain_runs.chain_after(session.model_id, ids, len(session.prompt_ids), chain)
    title = f"after {len(ids)} tokens: {rows[0]['kept_count']:,} → {rows[-1]['kept_count']:,} tokens"
    spec = chain_plots.funnel_spec(rows, title)
    note = f"mirostat mu: {dict(run.state.mu)}" if run.state.mu else ""
    return PlotData(type="plotly", plot=spec_json(spec)), chain_html.funnel_table(rows, note)


@user_errors
def show_chain(state, chain_text, stage=0):
    """The funnel of `chain_text` on the session's distribution; the stage picker keeps `stage`."""
    chain = chain_from(chain_text or "")
    kept = stage if isinstance(stage, int) and 0 <= stage < len(chain.stages) else 0
    choices = gr.update(choices=_stage_choices(chain), value=kept if chain.stages else None)
    if state is None:
        return None, chain_html.funnel_table([], HINT), format_chain(chain), choices
    plot, table = _funnel(state, chain)
    return plot, table, format_chain(chain), choices


def preset_text(name):
    return format_chain(chain_from(name)) if name in PRESETS else gr.skip()


@user_errors
def add(chain_text, sampler):
    return format_chain(add_stage(chain_from(chain_text or ""), sampler))


def _stage_index(value) -> int:
    if value is None or value == "":
        raise PlaygroundError("Pick a stage first.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"Not a stage: {value!r}.") from None


@user_errors
def remove(chain_text, stage):
    return format_chain(remove_stage(chain_from(chain_text or ""), _stage_index(stage)))


def _moved(chain_text, stage, delta: int):
    """(the chain with the stage moved, the stage's new index: the picker follows it)."""
    chain, index = chain_from(chain_text or ""), _stage_index(stage)
    moved = move_stage(chain, index, delta)
    return format_chain(moved), max(0, min(len(chain.stages) - 1, index + delta))


@user_errors
def move_up(chain_text, stage):
    return _moved(chain_text, stage, -1)


@user_errors
def move_down(chain_text, stage):
    return _moved(chain_text, stage, 1)


def _ab_inputs(state, chain_a, chain_b, seed, what: str):
    """(chain A, chain B, seed) for an A/B run on the lab's session, checked; refused in words without one."""
    if state is None:
        raise PlaygroundError(f"Press “Show distribution” first: {what}.")
    backend_for(state.model_id).require("sampler_chain")
    return chain_from(chain_a or ""), chain_from(chain_b or ""), clamp_int(seed, "seed", 0, 2**31 - 1)


@user_errors
def run_ab(state, chain_a, chain_b, seed, tokens):
    """A (the chain above) and B from the lab's text on the same seed: two strips, the divergence marked."""
    a, b, seed = _ab_inputs(state, chain_a, chain_b, seed, "A/B continues the lab's text")
    tokens = clamp_int(tokens, "tokens", 1, MAX_AB_TOKENS)
    result = chain_runs.ab_after(state.model_id, state.ids, a, b, seed, tokens)
    return chain_html.ab_strips(result.as_dict(), format_chain(a), format_chain(b))


@user_errors
def run_ab_samples(state, chain_a, chain_b, seed, k):
    """K draws of the next token per side on the same K uniform numbers: the two histograms."""
    a, b, seed = _ab_inputs(state, chain_a, chain_b, seed, "K samples A/B draw the lab's next token")
    k = clamp_int(k, "K", 1, MAX_AB_K)
    result = chain_runs.ab_samples(state.model_id, state.ids, len(state.prompt_ids), a, b, seed, k)
    tokenizer = backend_for(state.model_id).lab_tokenizer(state)
    data = result.as_dict(lambda t: display_text(token_bytes(tokenizer, t)))
    return PlotData(type="plotly", plot=spec_json(chain_plots.ab_samples_spec(data, format_chain(a), format_chain(b))))


@user_errors
def grow_tree(state, tree):
    """The lab's current text folded into the session's branching tree (no model call)."""
    if state is None:
        return tree, gr.skip(), gr.skip()
    tree = observe(tree, state.prompt_ids, [(r.id, r.raw_prob, r.chosen) for r in list(state.records)])
    tokenizer = backend_for(state.model_id).lab_tokenizer(state)
    data = tree_dict(tree, lambda t: display_text(token_bytes(tokenizer, t)))
    title = f"{len(tree.nodes)} tokens chosen from this prompt" + (
        f" (at most {data['max_nodes']}: new ones are not added)" if tree.full else "")
    return tree, PlotData(type="plotly", plot=spec_json(chain_plots.tree_spec(data, title))), data


def build(state: gr.State) -> dict:
    """The section, wired to the lab's session `state`. Returns its parts for `follow` and the lab's deep
    link (`extend_link`)."""
    initial = chain_from(DEFAULT_PRESET)
    with gr.Accordion("Sampler chain: every sampler, in your order, stage by stage", open=False,
                      elem_id="chain-section") as accordion:
        with gr.Row():
            preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="preset", scale=1, elem_id="chain-preset")
            chain_box = gr.Textbox(format_chain(initial), label="chain (llama.cpp's names, in order; Enter to run)",
                                   lines=2, scale=4, elem_id="chain-text")
        with gr.Row():
            stage = gr.Dropdown(_stage_choices(initial), value=0, label="stage", scale=2, elem_id="chain-stage")
            up = gr.Button("Up", scale=1, elem_id="chain-up")
            down = gr.Button("Down", scale=1, elem_id="chain-down")
            drop = gr.Button("Remove", scale=1, elem_id="chain-remove")
            sampler = gr.Dropdown(list(ADD_DEFAULTS), value="top_n_sigma", label="sampler", scale=2,
                                  elem_id="chain-sampler")
            plus = gr.Button("Add", scale=1, elem_id="chain-add")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                funnel = gr.Plot(label="the funnel: kept tokens, their mass, the entropy after each stage",
                                 elem_id="chain-funnel")
            with gr.Column(scale=2):
                table = gr.HTML(chain_html.funnel_table([], HINT), elem_id="chain-table-view")
        gr.Markdown("**A/B on the same dice**: chain A (above) and chain B continue the lab's text; at each "
                    "position both draw ONE uniform number and invert their cumulative distribution over the "
                    "model's order, so up to the first divergence a difference is the chains', not the dice's.")
        with gr.Row():
            chain_b = gr.Textbox(DEFAULT_B, label="chain B", lines=1, scale=4, elem_id="chain-b")
            seed = gr.Number(0, label="seed", precision=0, minimum=0, scale=1, elem_id="chain-ab-seed")
            tokens = gr.Slider(1, MAX_AB_TOKENS, value=16, step=1, label="tokens", scale=2, elem_id="chain-ab-tokens")
            ab_button = gr.Button("A/B", variant="primary", scale=1, elem_id="chain-ab")
        strips = gr.HTML(elem_id="chain-ab-strips")
        with gr.Row():
            ab_k = gr.Slider(1, MAX_AB_K, value=64, step=1, label="K samples A/B: K draws of the next token per side",
                             scale=4, elem_id="chain-ab-k")
            ab_samples_button = gr.Button("K samples A/B", scale=1, elem_id="chain-ab-samples")
        ab_histograms = gr.Plot(label="the next token over K draws, A beside B (the same K uniform numbers)",
                                elem_id="chain-ab-histograms")
        gr.Markdown("**Branching tree**: every token the lab chose from this prompt (sampled, clicked or "
                    "generated); after Undo a different token starts a branch. The current path is in colour; "
                    "click a node to bring the text back (or over) to it.")
        tree_plot = gr.Plot(label="the session's tree (hover: the path's log-probability)", elem_id="chain-tree")
        with gr.Accordion("tree (JSON)", open=False):
            tree_json = gr.JSON(elem_id="chain-tree-json")
    tree = gr.State(None)
    ab_button.click(run_ab, [state, chain_box, chain_b, seed, tokens], strips, api_name="sampling_chain_ab")
    ab_samples_button.click(run_ab_samples, [state, chain_box, chain_b, seed, ab_k], ab_histograms,
                            api_name="sampling_chain_ab_samples")
    outputs = [funnel, table, chain_box, stage]
    run = dict(fn=show_chain, inputs=[state, chain_box, stage], outputs=outputs, show_progress="hidden")
    preset.input(preset_text, preset, chain_box, api_name=False, queue=False).then(api_name=False, **run)
    chain_box.submit(api_name="sampling_chain", **run)
    for button, handler in ((up, move_up), (down, move_down)):
        button.click(handler, [chain_box, stage], [chain_box, stage], api_name=False, queue=False).success(
            api_name=False, **run)
    drop.click(remove, [chain_box, stage], chain_box, api_name=False, queue=False).success(api_name=False, **run)
    plus.click(add, [chain_box, sampler], chain_box, api_name=False, queue=False).success(api_name=False, **run)
    follows = [dict(fn=grow_tree, inputs=[state, tree], outputs=[tree, tree_plot, tree_json], show_progress="hidden"),
               run]
    return {"accordion": accordion, "chain": chain_box, "chain_b": chain_b, "seed": seed, "tokens": tokens,
            "tree": tree, "follows": follows}


def follow(parts: dict, events) -> None:
    """After each of the lab's `events` (those that change its text; a stream's once it has ended) the
    tree grows and the funnel follows."""
    for event in events:
        for step in parts["follows"]:
            event.then(api_name=False, **step)


def extend_link(link, parts: dict, shown: str) -> None:
    """The lab's deep link gains `chain`, `chain_b`, `ab_seed`, `ab_tokens`; `run=chain` shows the
    distribution (the funnel follows), `run=ab` then draws A/B; `view=chain` and `view=ab`."""
    link.fields.update(chain=parts["chain"], chain_b=parts["chain_b"], ab_seed=parts["seed"], ab_tokens=parts["tokens"])
    link.actions["chain"] = [("sampling-show", shown)]
    link.actions["ab"] = [("sampling-show", shown), ("chain-ab", "#ab-note")]
    link.views["chain"] = ("chain-funnel", parts["accordion"])
    link.views["ab"] = ("chain-ab-strips", parts["accordion"])
