"""The route guard's decisions on the real app's function table (`playground.ui.guard_routes`).

Builds the app (no model is loaded) and asks the guard about calls a hostile client sends: each
unknown or browser-only function, each queued function on a direct route, is refused with a 4xx
and a short message; the page's own calls pass. The HTTP answers themselves are tested against the
running app in tests/api/test_hostile_routes.py.
"""

from __future__ import annotations

import pytest

from playground.ui import shell
from playground.ui.guard_routes import Refusal, check_function_call


@pytest.fixture(scope="module")
def blocks():
    return shell.build_app()


def _index(blocks, name):
    return next(i for i, fn in blocks.fns.items() if fn.api_name == name)


def _refusal(blocks, path, body) -> Refusal:
    with pytest.raises(Refusal) as raised:
        check_function_call(blocks, path, body)
    assert len(raised.value.message) < 200 and "Traceback" not in raised.value.message
    return raised.value


@pytest.mark.parametrize("path", ["/gradio_api/run/tokenize", "/gradio_api/run/tokenize/", "/gradio_api/api/tokenize",
                                  "/gradio_api/api/tokenize/", "/gradio_api/run/sampling_generate"])
def test_queued_functions_are_refused_on_direct_routes(blocks, path):
    refusal = _refusal(blocks, path, {"data": []})
    assert refusal.status == 403 and "only through the queue" in refusal.message


def test_a_direct_route_naming_a_queued_function_by_index_is_refused(blocks):
    body = {"data": [], "fn_index": _index(blocks, "beam_search")}
    assert _refusal(blocks, "/gradio_api/run/predict", body).status == 403


@pytest.mark.parametrize("index", [9999, -1, 1e10, "x", True, [1]])
def test_unknown_function_indices(blocks, index):
    for path in ("/gradio_api/queue/join", "/gradio_api/run/predict"):
        refusal = _refusal(blocks, path, {"data": [], "fn_index": index, "session_hash": "abc"})
        assert refusal.status == 404 and refusal.message.startswith("Unknown function index")


def test_browser_only_functions(blocks):
    index = next(i for i, fn in blocks.fns.items() if fn.fn is None)
    refusal = _refusal(blocks, "/gradio_api/queue/join", {"data": [], "fn_index": index, "session_hash": "abc"})
    assert refusal.status == 404 and "runs in the browser only" in refusal.message


@pytest.mark.parametrize("path", ["/gradio_api/call/nope", "/gradio_api/call/v2/nope", "/gradio_api/run/nope",
                                  "/gradio_api/api/nope/"])
def test_unknown_endpoint_names(blocks, path):
    refusal = _refusal(blocks, path, {"data": []})
    assert refusal.status == 404 and refusal.message.startswith("Unknown endpoint '/nope'")


def test_bodies_that_are_not_objects(blocks):
    assert _refusal(blocks, "/gradio_api/call/tokenize", [1, 2]).status == 400


def test_the_pages_own_calls_pass(blocks):
    check_function_call(blocks, "/gradio_api/call/tokenize", {"data": ["bytes", "abc", False, False]})
    check_function_call(blocks, "/gradio_api/queue/join", {"data": [], "fn_index": _index(blocks, "tokenize")})
    page_update = next(i for i, fn in blocks.fns.items() if fn.fn is not None and not fn.queue)
    check_function_call(blocks, "/gradio_api/run/predict", {"data": [], "fn_index": page_update})


def test_functions_left_outside_the_queue_make_no_model_call(blocks):
    """What the direct routes still serve: every non-queued function is a small page update. None
    is a handler the queue's groups list (those run models or real work) or a known model call."""
    outside = {shell.handler_key(fn) for fn in blocks.fns.values() if fn.fn is not None and not fn.queue}
    assert outside, "expected the page's small updates"
    assert not outside & set(shell.EVENT_GROUPS), sorted(outside & set(shell.EVENT_GROUPS))
