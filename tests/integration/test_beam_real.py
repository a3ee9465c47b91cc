"""The recorded beam search equals `model.generate(num_beams=...)` on both packaged models.

Token for token and `sequences_scores` within 1e-4, over a small grid that covers length_penalty
(negative, zero, positive), early_stopping (True, False, "never"), num_return_sequences and a chat
answer that ends with the model's own EOS (<|im_end|>). Kept to a few minutes of CPU.
"""

from __future__ import annotations

import pytest
import torch

from playground import beam
from playground.decoding import prompt_ids
from playground.models import load_model

CASES = [
    # model, prompt, chat template, (num_beams, max_new_tokens, length_penalty, early_stopping, num_return)
    ("smollm2-135m-instruct", "What is the capital of France?", True, (4, 8, -1.0, False, 2)),
    ("smollm2-135m-instruct", "Name a fruit.", True, (2, 8, 2.0, "never", 2)),
    ("smollm2-135m-instruct", "The capital of France is", False, (3, 6, 0.0, False, 1)),
    ("gemma-3-270m", "The capital of France is", False, (3, 6, 1.0, False, 3)),
    ("gemma-3-270m", "Once upon a time", False, (2, 8, 2.0, "never", 1)),
    ("gemma-3-270m", "The best thing about living in a small town is", False, (4, 6, 0.0, True, 4)),
]


def generate_reference(loaded, ids, s: beam.BeamSettings):
    with torch.inference_mode():
        return loaded.model.generate(
            torch.tensor([ids], device=loaded.device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=loaded.device),
            num_beams=s.num_beams, max_new_tokens=s.max_new_tokens, length_penalty=s.length_penalty,
            early_stopping=s.early_stopping, num_return_sequences=s.num_return_sequences, do_sample=False,
            output_scores=True, return_dict_in_generate=True,
        )


def assert_equals_generate(loaded, ids, s: beam.BeamSettings) -> beam.BeamResult:
    result = beam.beam_search(loaded, ids, s)
    out = generate_reference(loaded, ids, s)
    assert [seq.ids for seq in result.sequences] == [
        row[len(ids): len(ids) + len(seq.ids)] for row, seq in zip(out.sequences.tolist(), result.sequences)
    ]
    assert max(seq.length for seq in result.sequences) == out.sequences.shape[1] - len(ids)
    assert [seq.score for seq in result.sequences] == pytest.approx(out.sequences_scores.tolist(), abs=1e-4)
    assert result.forward_calls == result.steps
    return result


@pytest.mark.parametrize("model_id,prompt,chat,grid", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_equals_generate(model_id, prompt, chat, grid):
    loaded = load_model(model_id)
    assert_equals_generate(loaded, prompt_ids(loaded, prompt, chat_template=chat), beam.BeamSettings(*grid))


def test_chat_answers_finish_with_eos():
    loaded = load_model("smollm2-135m-instruct")
    ids = prompt_ids(loaded, "What is the capital of France?", chat_template=True)
    result = assert_equals_generate(loaded, ids, beam.BeamSettings(3, 24, 1.0, True, 3))
    eos = loaded.eos_token_ids
    assert result.stop_reason.startswith("early_stopping")
    assert all(seq.ids[-1] in eos and seq.length < 24 for seq in result.sequences)
    assert "Paris" in result.sequences[0].text


def test_greedy_path_matches_generate_on_gemma():
    loaded = load_model("gemma-3-270m")
    ids = prompt_ids(loaded, "The capital of France is")
    result = beam.add_comparisons(loaded, beam.beam_search(loaded, ids, beam.BeamSettings(2, 6, 1.0, False, 1)))
    with torch.inference_mode():
        greedy = loaded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                       max_new_tokens=6, do_sample=False)
    assert result.greedy.ids == greedy[0, len(ids):].tolist()
    assert result.greedy.node_ids[0] is not None


@pytest.mark.parametrize("model_id", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_one_eos_definition_covers_generate(model_id):
    """The search stops at `loaded.eos_token_ids`; they include every id `generate` stops at (and the
    tokenizer's), and are no more, so the candidates per step match transformers' count."""
    loaded = load_model(model_id)
    generation_eos = loaded.model.generation_config.eos_token_id
    generation_eos = set(generation_eos if isinstance(generation_eos, list) else [generation_eos])
    assert generation_eos | {loaded.tokenizer.eos_token_id} <= set(loaded.eos_token_ids)
    assert set(loaded.eos_token_ids) == generation_eos
