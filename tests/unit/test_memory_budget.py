"""The memory budget: the caches are emptied first, then a new heavy request is refused in words."""

from __future__ import annotations

import pytest

from playground import lru, memory_budget, settings
from playground.errors import PlaygroundError


@pytest.fixture
def budget_mb(monkeypatch):
    """Set PLAYGROUND_MEMORY_BUDGET_MB for one test (settings are read from the environment)."""
    def set_budget(mb: float) -> None:
        monkeypatch.setattr(settings, "current", lambda: settings.Settings(memory_budget_mb=mb))
    return set_budget


def test_rss_is_read_from_the_process():
    rss = memory_budget.rss_bytes()
    assert rss is not None and 10 * 2**20 < rss < 64 * 2**30


def test_the_automatic_budget_is_two_and_a_half_times_the_memory_with_the_models_loaded(budget_mb, monkeypatch):
    budget_mb(0)
    monkeypatch.setattr(memory_budget, "_loaded_rss", None)
    assert memory_budget.limit_bytes() is None and not memory_budget.status().over  # nothing loaded: not enforced
    memory_budget.note_models_loaded()
    rss = memory_budget._loaded_rss
    assert memory_budget.limit_bytes() == max(memory_budget.FLOOR_BYTES, int(2.5 * rss))
    budget_mb(512)
    assert memory_budget.limit_bytes() == 512 * 2**20


def test_within_the_budget_nothing_is_emptied_and_requests_start(budget_mb):
    budget_mb(64 * 1024)
    cache = lru.BoundedLRU(4)
    cache.put("a", 1)
    memory_budget.admit("a test request")
    assert cache.get("a") == 1


def test_over_the_budget_the_caches_are_emptied_then_the_request_is_refused_in_words(budget_mb):
    budget_mb(1)  # 1 MB: any Python process is over it
    evicted = []
    cache = lru.BoundedLRU(4, on_evict=lambda key, value: evicted.append(key))
    cache.put("a", 1)
    cache.put("b", 2)
    with pytest.raises(PlaygroundError) as error:
        memory_budget.admit("a beam search")
    message = str(error.value)
    assert "short of memory" in message and "budget 1 MB" in message and "a beam search" in message
    assert len(cache) == 0 and sorted(evicted) == ["a", "b"]  # relieved first (decoders handed back)


def test_samples_are_sized_by_what_the_budget_has_left(budget_mb):
    rss = memory_budget.rss_bytes()
    budget_mb((rss + 10 * 2**20) / 2**20)  # about 10 MB of headroom
    assert memory_budget.samples_that_fit(64, 2**20) in range(8, 12)
    assert memory_budget.samples_that_fit(64, 2**30) == 1  # at least one
    assert memory_budget.samples_that_fit(4, 1) == 4  # never more than asked


def test_k_samples_are_cut_to_the_budget_and_the_result_says_so(budget_mb):
    """Tiny-random: a budget with room for about 3 samples draws 3 of the 8 asked for, and says so."""
    from playground import generation, lab
    from playground.models import load_model
    from playground.sampling import SamplingSettings

    loaded = load_model("tiny-random")
    session = lab.open_session("tiny-random", "Hello there", False, 64)
    each = generation.sample_bytes(loaded, len(session.ids) + 4)
    budget_mb((memory_budget.rss_bytes() + 3.5 * each) / 2**20)
    result = list(lab.samples(session, SamplingSettings(), 8, 4, 0))[-1]
    assert 1 <= len(result.samples) <= 4 and result.requested == 8
    assert f"{len(result.samples)} samples, not the 8 asked for" in result.budget_note
    budget_mb(64 * 1024)
    result = list(lab.samples(session, SamplingSettings(), 8, 4, 0))[-1]
    assert len(result.samples) == 8 and result.budget_note == ""
