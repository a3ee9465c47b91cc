"""Under-trained tokens (`playground.inside.rare_tokens`) and the Inside tab's section on them, on the
tiny random model: the statistic, the ranking, the words derived from the numbers, escaping."""

from __future__ import annotations

import torch

from playground.inside import rare_tokens as rare
from playground.models import load_model
from playground.ui import rare_section


def test_centred_row_norms_chunk_by_chunk_equal_the_formula(monkeypatch):
    weight = torch.randn(37, 5)
    expected = (weight - weight.mean(dim=0)).norm(dim=1)
    monkeypatch.setattr(rare, "CHUNK_ROWS", 8)
    assert torch.allclose(rare.centred_row_norms(weight), expected, atol=1e-6)
    assert torch.allclose(rare.centred_row_norms(weight.half()), expected, atol=1e-2)


def test_the_lowest_rows_come_first_with_their_z_scores_special_tokens_left_out():
    loaded = load_model("tiny-random")
    found = rare._rare_tokens(loaded, 5)
    weight = loaded.model.get_output_embeddings().weight
    special = set(loaded.tokenizer.all_special_ids)
    norms = rare.centred_row_norms(weight[: min(weight.shape[0], len(loaded.tokenizer))])
    ordinary = [(float(n), i) for i, n in enumerate(norms.tolist()) if i not in special]
    assert [t.id for t in found.lowest] == [i for _, i in sorted(ordinary)[:5]]
    assert found.vocab_size == len(ordinary) and not special & {t.id for t in found.lowest + found.typical}
    values = torch.tensor([n for n, _ in ordinary])
    first = found.lowest[0]
    assert abs(first.z - (first.norm - float(values.mean())) / float(values.std())) < 1e-5
    assert all(a.norm <= b.norm for a, b in zip(found.lowest, found.lowest[1:]))
    assert found.lowest[-1].norm <= min(t.norm for t in found.typical)
    assert rare.rare_tokens(loaded, 5) is rare.rare_tokens(loaded, 5)  # once per loaded model


def test_the_summary_says_what_the_numbers_show_and_escapes_token_text():
    token = rare.RareToken(7, "<b>x</b>", 0.5, -3.5, False)
    found = rare.RareTokens("m", 100, True, 1.0, 0.1, (token,), (rare.RareToken(8, "y", 1.0, 0.0, True),))
    page = rare_section.summary_html(found)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "1 of these 1 lie more than 3 standard deviations below" in page and "tied input and output" in page
    calm = rare.RareTokens("m", 100, False, 1.0, 0.1, (rare.RareToken(7, "a", 0.8, -1.9, True),), ())
    assert "no clear under-trained tokens" in rare_section.summary_html(calm)
    assert "z = -1.90" in rare_section.summary_html(calm)


def test_the_repeat_verdict_never_reads_more_than_the_answers_show():
    def check(candidate: bool, *controls: bool) -> str:
        answer = lambda repeated: rare.RepeatAnswer("x", 1, "p", "r", repeated)  # noqa: E731
        return rare.RepeatCheck("m", True, answer(candidate), tuple(answer(c) for c in controls)).verdict

    assert check(True, False, False, False).startswith("It repeated the candidate")
    assert check(False, True, True, False) == ("It repeated 2 of 3 median tokens but not the candidate: a sign "
                                               "that it barely knows the candidate.")
    assert "does not do the task reliably" in check(False, True, False, False)


def test_a_repeat_check_runs_through_the_lab_and_refuses_a_token_out_of_range():
    import pytest

    from playground.errors import PlaygroundError

    check = rare.repeat_check("tiny-random", 5)
    assert check.candidate.token_id == 5
    assert [a.token_id for a in check.controls] == [t.id for t in rare.for_model("tiny-random").typical]
    assert check.candidate.prompt.startswith("Please repeat this string back to me exactly") == check.chat
    with pytest.raises(PlaygroundError):
        rare.repeat_check("tiny-random", 10**9)
    page = rare_section.ask_to_repeat("tiny-random", 5)
    assert page.count("<tr>") == 2 + len(check.controls) and check.verdict.split(":")[0] in page


def test_a_tokens_script_is_named_for_viewers_without_its_font():
    assert rare.script_of(" ಬಿಯ") == "Kannada" and rare.script_of(" yoga") == "Latin"
    assert rare.script_of("的小") == "CJK" and rare.script_of(" 123") == "" and rare.script_of("") == ""
    page = rare_section.summary_html(rare.RareTokens("m", 1, True, 1.0, 0.1, (rare.RareToken(1, " ಬಿಯ", 0.5, -5, True),), ()))
    assert "<td>Kannada</td>" in page
