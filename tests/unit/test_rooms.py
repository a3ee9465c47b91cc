"""Class rooms on the tiny random model: one suite, run on the in-process store and on a real Redis."""

from __future__ import annotations

import json
import math
import time

import pytest
import redis

from playground.decoding import forget_distributions, next_token_distribution
from playground.errors import PlaygroundError
from playground.models import load_model
from playground.rooms import polls, room
from playground.rooms.memory_store import MemoryStore
from playground.rooms.configured import store_for

MODEL = "tiny-random"
PROMPT = "The cat sat on the"


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    made = store_for(url)
    yield made
    made.close()


def student(n: int) -> str:
    return f"student-{n:04d}"


def test_a_room_has_a_short_code_and_a_secret_key_outside_the_join_link(store):
    made = room.create(store)
    assert len(made.code) == room.CODE_LENGTH and set(made.code) <= set(room.CODE_ALPHABET)
    assert made.join_path == f"/?join={made.code}" and made.key not in made.join_path
    assert made.key not in json.dumps(store.read(made.code))  # only its hash is kept
    assert room.view(made.code.lower(), store).code == made.code  # codes are read in any case
    with pytest.raises(PlaygroundError, match="is not a class code"):
        room.view("ab", store)
    with pytest.raises(PlaygroundError, match="There is no class"):
        room.view("ZZZZZZ", store)


@pytest.mark.parametrize("key", [None, "", "not-the-key", 42])
def test_only_the_presenter_key_publishes_starts_hides_and_reveals(store, key):
    made = room.create(store)
    refused = "Only the presenter of class"
    with pytest.raises(PlaygroundError, match=refused):
        room.publish(made.code, key, {"tab": "sampling"}, store)
    with pytest.raises(PlaygroundError, match=refused):
        room.start_poll(made.code, key, "chat", models=("a", "b"), store=store)
    room.start_poll(made.code, made.key, "chat", models=("a", "b"), store=store)
    for action in (lambda: room.reveal(made.code, key, store), lambda: room.hide(made.code, key, "A", store),
                   lambda: room.answer_labels(made.code, key, store)):
        with pytest.raises(PlaygroundError, match=refused):
            action()
    assert room.view(made.code, store).poll["revealed"] is False


def test_publish_bumps_the_version_and_followers_see_the_state(store):
    made = room.create(store)
    first = room.view(made.code, store).version
    version = room.publish(made.code, made.key, {"tab": "sampling", "step": 1}, store)
    assert version > first
    assert room.publish(made.code, made.key, {"tab": "sampling", "step": 1}, store) == version  # unchanged
    seen = room.view(made.code, store)
    assert seen.state == {"tab": "sampling", "step": 1} and seen.version == version
    with pytest.raises(PlaygroundError, match="larger than"):
        room.publish(made.code, made.key, {"prompt": "x" * (room.STATE_MAX_BYTES + 1)}, store)


def test_the_number_of_rooms_is_bounded(store, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_ROOMS", str(store.count() + 2))
    room.create(store), room.create(store)
    with pytest.raises(PlaygroundError, match="PLAYGROUND_MAX_ROOMS"):
        room.create(store)


def test_one_address_starts_a_bounded_number_of_classes(store, monkeypatch):
    """A script cannot take every room: the fourth class from one address within the hour is refused
    in words, another address still starts one."""
    monkeypatch.setenv("PLAYGROUND_CLASS_STARTS", "3")
    for _ in range(3):
        room.create(store, starter="10.0.0.7")
    with pytest.raises(PlaygroundError, match="started 3 classes within the hour"):
        room.create(store, starter="10.0.0.7")
    assert room.create(store, starter="10.0.0.8").code


def test_rooms_expire(store, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_ROOM_TTL", "0.3")
    made = room.create(store)
    assert room.view(made.code, store).code == made.code
    deadline = time.monotonic() + 10
    while store.read(made.code) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(PlaygroundError, match="There is no class"):
        room.view(made.code, store)


def test_answers_are_one_per_student_bounded_and_rate_limited(store, monkeypatch):
    made = room.create(store)
    with pytest.raises(PlaygroundError, match="no poll to answer"):
        room.answer(made.code, student(1), "A", store)
    poll = room.start_poll(made.code, made.key, "chat", models=("base-model", "chat-model"), store=store)
    assert "models" not in room.view(made.code, store).poll  # the names only at the reveal
    assert "your vote: A" in room.answer(made.code, student(1), "a", store)
    room.answer(made.code, student(1), "B", store)  # replaces
    room.answer(made.code, student(2), "B", store)
    assert store.answers(made.code, poll["id"]).keys() == {student(1), student(2)}
    room.answer(made.code, student(2), "B", store, poll_id=poll["id"])
    with pytest.raises(PlaygroundError, match="That poll has ended"):
        room.answer(made.code, student(2), "B", store, poll_id="0ld0ld00")
    for bad, message in [("x" * 41, "at most 40 characters"), ("   ", "Type an answer"), ("C", "Vote A"),
                         (None, "short text")]:
        with pytest.raises(PlaygroundError, match=message):
            room.answer(made.code, student(3), bad, store)
    with pytest.raises(PlaygroundError, match="no student id"):
        room.answer(made.code, "x", "A", store)
    monkeypatch.setenv("PLAYGROUND_ANSWER_RATE", "2")
    room.answer(made.code, student(4), "A", store)
    room.answer(made.code, student(4), "A", store)
    with pytest.raises(PlaygroundError, match="Too many answers"):
        room.answer(made.code, student(4), "A", store)
    result = room.reveal(made.code, made.key, store)
    assert [(v["label"], v["model"], v["count"]) for v in result["votes"]] == [("A", "base-model", 1),
                                                                             ("B", "chat-model", 2)]
    assert room.view(made.code, store).poll["result"] == result
    with pytest.raises(PlaygroundError, match="closed"):
        room.answer(made.code, student(5), "A", store)
    hidden = room.hide(made.code, made.key, "B", store)
    assert [v["count"] for v in hidden["votes"]] == [1, 0] and hidden["hidden"] == 2


def test_a_guess_is_the_first_token_of_the_text_as_it_would_continue():
    tokenizer = load_model(MODEL).tokenizer
    ids = next_token_distribution(MODEL, PROMPT).input_ids
    assert polls.continuation(PROMPT, "mat") == " mat"  # the lecture: white space goes with the next word
    assert polls.continuation(PROMPT + " ", "mat") == "mat"
    assert polls.continuation(PROMPT, ",") == ","
    mat = polls.map_guess(tokenizer, PROMPT, ids, "mat")
    assert mat.label == "␣mat" and mat.n_tokens == 1 and mat.note == "counted as the token “␣mat”"
    assert mat.token_id == tokenizer(" mat", add_special_tokens=False)["input_ids"][0]
    long = polls.map_guess(tokenizer, PROMPT, ids, "antidisestablishment")
    assert long.n_tokens > 1 and f"is {long.n_tokens} tokens" in long.note
    assert long.token_id == tokenizer(" antidisestablishment", add_special_tokens=False)["input_ids"][0]


def test_next_token_poll_runs_the_model_once_and_reveals_class_against_model(store):
    loaded = load_model(MODEL)
    forget_distributions(loaded)
    made = room.create(store)
    before = loaded.forward_calls
    poll = room.start_poll(made.code, made.key, "next_token", model_id=MODEL, prompt=PROMPT, store=store)
    assert loaded.forward_calls == before + 1
    public = room.view(made.code, store).poll
    assert "prompt_ids" not in public  # the public part only
    # chips for phones: the model's most probable words, alphabetical, each mapping back to its own token
    chips = public["options"]
    assert 3 <= len(chips) <= polls.CHIPS and chips == sorted(chips, key=str.lower)
    top = next_token_distribution(MODEL, PROMPT).logits.topk(4 * polls.CHIPS).indices.tolist()
    ids = next_token_distribution(MODEL, PROMPT).input_ids
    assert all(polls.map_guess(loaded.tokenizer, PROMPT, ids, chip).token_id in top for chip in chips)
    guesses = ["mat", "mat", "floor", "antidisestablishment", "mat"]
    for n, guess in enumerate(guesses):
        room.answer(made.code, student(n), guess, store)
    room.reveal(made.code, made.key, store)
    assert loaded.forward_calls == before + 1  # answering and the reveal: tokenization and counting
    result = room.view(made.code, store).poll["result"]
    logits = next_token_distribution(MODEL, PROMPT).logits
    logprobs = polls.logprobs_of(polls.logprob_blob(logits))
    rows = result["rows"]
    assert [r["p"] for r in rows] == sorted((r["p"] for r in rows), reverse=True)  # the model's order
    ranked = sorted(range(logits.shape[0]), key=lambda t: -float(logprobs[t]))
    assert [r["id"] for r in rows][:3] == ranked[:3]
    tokenizer = loaded.tokenizer
    mat = tokenizer(" mat", add_special_tokens=False)["input_ids"][0]
    row = next(r for r in rows if r["id"] == mat)
    assert (row["count"], row["share"], row["label"]) == (3, 0.6, "␣mat")
    assert row["rank"] == polls.rank_of(logprobs, mat)
    assert math.isclose(row["p"], math.exp(float(logprobs[mat])), rel_tol=1e-6)
    assert result["answers"] == 5 and sum(r["count"] for r in rows) == 5
    expected = sum(-float(logprobs[tokenizer(" " + g, add_special_tokens=False)["input_ids"][0]]) / math.log(2)
                   for g in guesses) / 5
    assert math.isclose(result["class_surprisal_bits"], expected, rel_tol=1e-6)
    probs = logits.softmax(-1)
    entropy = float(-(probs * probs.log()).sum()) / math.log(2)
    assert abs(result["model_entropy_bits"] - entropy) < 0.01
    assert result["verdict"].startswith("The class was more surprised" if expected > entropy
                                        else "The class was less surprised")
    assert result["several"][0]["text"] == "antidisestablishment"
    assert result["top_share"] == (sum(1 for g in guesses if tokenizer(" " + g, add_special_tokens=False)
                                       ["input_ids"][0] == ranked[0]) / 5)
    assert "␣mat" in room.answer_labels(made.code, made.key, store)
    hidden = room.hide(made.code, made.key, "␣mat", store)
    assert hidden["answers"] == 2 and hidden["hidden"] == 3
    assert poll["id"] == room.view(made.code, store).poll["id"]


def test_count_poll_gives_the_real_count_per_tokenizer(store):
    made = room.create(store)
    text = "Tokenization is surprisingly tricky."
    room.start_poll(made.code, made.key, "count", text=text, tokenizer_ids=["tiny-random", "bytes"], store=store)
    for n, guess in enumerate(["5", "7", "7", "1,000"]):
        room.answer(made.code, student(n), guess, store)
    with pytest.raises(PlaygroundError, match="whole number"):
        room.answer(made.code, student(9), "many", store)
    result = room.reveal(made.code, made.key, store)
    tokenizer = load_model(MODEL).tokenizer
    assert result["real"] == {"tiny-random": len(tokenizer(text, add_special_tokens=False)["input_ids"]),
                              "bytes": len(text.encode())}
    assert result["guesses"] == [{"label": "5", "count": 1}, {"label": "7", "count": 2},
                                 {"label": "1000", "count": 1}]
    assert result["median"] == 7.0
