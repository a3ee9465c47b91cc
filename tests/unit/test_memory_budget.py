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


def _budget_with_headroom(budget_mb, headroom: int) -> None:
    """A budget whose stop line lies `headroom` bytes above the process's RSS once relieved (so a
    relief inside the test frees nothing more)."""
    rss = memory_budget.relieve().rss_bytes
    budget_mb((rss + headroom) / (1 - memory_budget.STOP_MARGIN) / 2**20)


def test_samples_are_sized_by_what_the_budget_has_left(budget_mb):
    _budget_with_headroom(budget_mb, 10 * 2**20)  # about 10 MB of headroom
    with memory_budget.reserved_samples(64, 2**20) as fits:
        assert fits in range(8, 12)
    with memory_budget.reserved_samples(64, 2**30) as fits:
        assert fits == 1  # at least one
    with memory_budget.reserved_samples(4, 1) as fits:
        assert fits == 4  # never more than asked


def test_two_requests_never_count_the_same_headroom(budget_mb):
    """What one request's samples reserve is gone for the next until the first ends."""
    _budget_with_headroom(budget_mb, 40 * 2**20)
    with memory_budget.reserved_samples(64, 2**20) as first:
        assert first in range(35, 41)
        assert memory_budget.status().reserved_bytes == first * 2**20
        with memory_budget.reserved_samples(64, 2**20) as second:
            assert second == 1  # the headroom is the first request's
        rss = memory_budget.relieve().rss_bytes
        budget_mb((rss + first * 2**20 // 2) / 2**20)  # below RSS + the reservation, above RSS
        with pytest.raises(PlaygroundError, match="short of memory"):
            memory_budget.admit("a beam search")
    assert memory_budget.status().reserved_bytes == 0  # handed back, also after an error


def test_the_stop_line_lies_within_five_percent_of_the_budget():
    limit = 1000 * 2**20
    assert memory_budget.Status(960 * 2**20, limit).at_stop_line
    assert not memory_budget.Status(940 * 2**20, limit).at_stop_line
    assert not memory_budget.Status(940 * 2**20, limit, 100 * 2**20).at_stop_line  # reservations: not yet in RSS
    assert memory_budget.Status(940 * 2**20, limit, 100 * 2**20).over  # but no new heavy request


def test_a_heavy_request_stops_in_words_at_the_stop_line_and_a_light_one_is_served(budget_mb):
    budget_mb(64 * 1024)
    with memory_budget.growing():
        memory_budget.check_running()  # far below: goes on
    budget_mb(memory_budget.rss_bytes() / 2 / 2**20)  # twice the budget, even after relieving
    memory_budget.check_running()  # a light request (one model call): served
    with memory_budget.growing(), pytest.raises(PlaygroundError) as error:
        memory_budget.check_running()
    assert "ran short of memory" in str(error.value) and "was stopped" in str(error.value)


def test_a_heavy_mark_reaches_the_worker_threads_a_request_runs_on():
    """Gradio runs a handler's steps on worker threads (anyio copies the context): the mark goes along."""
    import concurrent.futures

    import anyio

    async def step():
        return await anyio.to_thread.run_sync(lambda: memory_budget._growing.get())

    async def heavy():
        with memory_budget.growing():
            return await step()

    # a thread of its own: in a whole-suite run Playwright's sync API keeps an event loop on this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(anyio.run, heavy).result() is True
        assert pool.submit(anyio.run, step).result() is False


def test_a_model_call_checks_the_stop_line(budget_mb):
    """Tiny-random: every model call of a heavy request passes the check (the forward refuses)."""
    import torch

    from playground.model_call import forward
    from playground.models import load_model

    loaded = load_model("tiny-random")
    budget_mb(memory_budget.rss_bytes() / 2 / 2**20)
    with memory_budget.growing(), pytest.raises(PlaygroundError, match="ran short of memory"):
        forward(loaded, torch.tensor([[1, 2, 3]]))
    logits, _ = forward(loaded, torch.tensor([[1, 2, 3]]))  # not heavy: served
    budget_mb(64 * 1024)
    logits, _ = forward(loaded, torch.tensor([[1, 2, 3]]))
    assert logits.shape[0] == 1


def test_k_samples_are_cut_to_the_budget_and_the_result_says_so(budget_mb):
    """Tiny-random: a budget with room for about 3 samples draws 3 of the 8 asked for, and says so.
    A 900-token prompt makes a sample's share (4 MB) large beside the process's own RSS noise."""
    from playground import generation, lab
    from playground.models import load_model
    from playground.sampling import SamplingSettings

    loaded = load_model("tiny-random")
    session = lab.open_session("tiny-random", "Hello there " * 300, False, 1024)
    each = generation.sample_bytes(loaded, len(session.ids) + 4)
    budget_mb(64 * 1024)
    result = list(lab.samples(session, SamplingSettings(), 8, 4, 0))[-1]
    assert len(result.samples) == 8 and result.budget_note == ""
    memory_budget.relieve()  # what the first run allocated once (threads, pools) is now in RSS
    _budget_with_headroom(budget_mb, int(3.5 * each))
    with memory_budget.growing():  # as the app runs K samples: a heavy request
        result = list(lab.samples(session, SamplingSettings(), 8, 4, 0))[-1]
    assert 1 <= len(result.samples) <= 4 and result.requested == 8
    assert f"{len(result.samples)} samples, not the 8 asked for" in result.budget_note
