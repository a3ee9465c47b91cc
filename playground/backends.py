"""One protocol between the tabs (and the CLI) and a model, whichever runs it: `backend_for(model_id)`.

A `Backend` is what the tabs need of a model: the lab's operations on a `lab.LabSession` (open a
prompt as ids, the view after them, a decode step or a generation with per-step candidates, K
samples), beam search's run, a side-by-side column's stream, teacher forcing (`score_text`), the
explorer's tokenizer, the text of generated records, and `capabilities` (each missing one with the
reason in words: `Backend.require(name)` is the one place a capability is refused).

Two kinds implement it: `InProcessBackend` (the model loaded here: `playground.local_lab`,
`playground.beam`, `playground.generation`, `playground.scoring`) and `EngineBackend` (a model served
over HTTP: `playground.engines.*`). This is the only module outside `playground/engines/` that
asks which kind a model is (tests/unit/test_layering.py counts). Each method wraps the existing
function of its kind, imported where it is called; none of them imports this module (the callers
do: `lab`, `chat.score_text`, `side_by_side`, `fim`, `tokenizers`, the tabs and the CLI).
What it leaves out: the implementations themselves, the registry (`playground.models`), views.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec

# The capabilities a tab may ask for by name (`Backend.require`).
CAPABILITIES = ("lab", "samples", "beam", "beam_comparisons", "stream", "score", "score_after_context",
                "tokenize", "fim", "inside", "template_view", "attribution", "sampler_chain",
                "constrained")
# The tabs (ui module names) and what each needs of a model to list it.
TAB_NEEDS = {"sampling": "lab", "beam": "beam", "chat": "stream", "fim": "fim", "inside": "inside",
             "tokenizer": "tokenize", "attribution": "attribution"}


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do: every name of `CAPABILITIES` not in `missing`; `missing` says why not."""

    missing: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name not in self.missing

    def require(self, name: str) -> None:
        """Raise the capability's refusal, in words, when it is missing."""
        if name in self.missing:
            raise PlaygroundError(self.missing[name])


class Backend(Protocol):
    spec: ModelSpec
    capabilities: Capabilities
    kind_label: str  # "" or ", engine": how a model list names the kind after the role
    remote: bool  # served by another process: the status line counts these "on engines"

    def require(self, name: str) -> None: ...
    def availability(self) -> tuple[bool, str]: ...
    def runs_in(self, tab: str | None, available: bool) -> bool: ...
    # the sampling lab (`playground.lab` calls these with its session)
    def open_lab(self, prompt, chat_template: bool, max_prompt_tokens: int) -> tuple[str, tuple[int, ...], str | None]: ...
    def lab_view(self, session, settings, ranked=None): ...
    def lab_next_token(self, session, settings, seed: int): ...
    def lab_append_token(self, session, settings, token_id: int): ...
    def lab_generate(self, session, settings, n: int, seed: int, stop_strings: Sequence[str] = ()) -> Iterator: ...
    def lab_samples(self, session, settings, k: int, length: int, seed: int, stop_strings=()) -> Iterator: ...
    def lab_tokenizer(self, session): ...
    def weights(self) -> str: ...
    def check(self) -> dict: ...
    def state(self, available: bool, reason: str, loaded) -> str: ...
    # the other tabs
    def beam_search(self, prompt, settings, chat_template=False, compare_greedy=False, sample_seed=None,
                    eos_token_ids=None, on_step=None): ...
    def encoder(self): ...
    def stream(self, contender, settings, max_new_tokens: int, seed: int): ...
    def generated_text(self, records) -> str: ...
    def score_text(self, text: str, context_ids=None): ...
    def explorer_tokenizer(self): ...
    # the sampler chain's next token: in-process every stage (`samplers.ab`), a llama.cpp engine its own run
    def chain_next_token(self, prompt: str, chain, chat_template: bool = False, top: int = 10) -> dict: ...
    def explorer_entry(self, info) -> tuple[str, str, bool, str]: ...
    # structured outputs: in-process, `constraints.Comparison`; an engine, `engines.structured.EngineConstrained`
    def constrained(self, prompt: str, constraint, settings, max_new_tokens: int, seed: int,
                    chat_template: bool = False): ...


class _Common:
    kind_label = ""
    remote = False  # served by another process (an engine)

    def __init__(self, spec: ModelSpec, capabilities: Capabilities):
        self.spec, self.capabilities = spec, capabilities

    def require(self, name: str) -> None:
        self.capabilities.require(name)

    def runs_in(self, tab: str | None, available: bool) -> bool:
        """Whether a model list for `tab` offers this model (None: any tab)."""
        need = TAB_NEEDS.get(tab or "")
        return available and (need is None or self.capabilities.has(need))


class InProcessBackend(_Common):
    """A model loaded into this process (`playground.models.load_model`)."""

    def availability(self) -> tuple[bool, str]:
        from playground import models

        return models.availability(self.spec)

    def state(self, available: bool, reason: str, loaded) -> str:
        """The model's state in a few words, for the Models panel (`loaded`: the LoadedModel or None)."""
        if not available:
            if "hub" in reason.lower() and ("reach" in reason.lower() or "offline" in reason.lower()):
                return "needs the Hugging Face hub (not reachable from this server)"
            return f"unavailable: {reason}"
        if loaded is not None:
            weights = getattr(loaded, "weights", "") or str(loaded.dtype).replace("torch.", "")
            label = "GGUF blocks, float32 arithmetic" if weights == "gguf" else f"{weights} weights"
            return f"loaded ({label}, {loaded.load_seconds:.1f} s)"
        return "loads on first use"

    def open_lab(self, prompt, chat_template, max_prompt_tokens):
        from playground import local_lab

        return local_lab.open_ids(self.spec.id, prompt, chat_template, max_prompt_tokens)

    def lab_view(self, session, settings, ranked=None):
        from playground import local_lab

        return local_lab.view(session, settings, ranked)

    def lab_next_token(self, session, settings, seed):
        from playground import local_lab

        return local_lab.next_token(session, settings, seed)

    def lab_append_token(self, session, settings, token_id):
        from playground import local_lab

        return local_lab.append_token(session, settings, token_id)

    def lab_generate(self, session, settings, n, seed, stop_strings=()):
        from playground import local_lab

        return local_lab.generate(session, settings, n, seed, stop_strings)

    def lab_samples(self, session, settings, k, length, seed, stop_strings=()):
        from playground import local_lab

        return local_lab.samples(session, settings, k, length, seed, stop_strings)

    def lab_tokenizer(self, session):
        from playground.models import load_model

        return load_model(self.spec.id).tokenizer

    def check(self) -> dict:
        """`models --check`: nothing more to ask of a model loaded here."""
        return {}

    def constrained(self, prompt, constraint, settings, max_new_tokens, seed, chat_template=False):
        """The constrained run with its per-step mask, beside the free run (`constraints.compare`)."""
        from playground import constraints, decoding
        from playground.models import load_model

        loaded = load_model(self.spec.id)
        ids = decoding.prompt_ids(loaded, prompt, chat_template)
        return constraints.compare(loaded, ids, constraint, settings, max_new_tokens, seed)

    def weights(self) -> str:
        """What ran: the loaded model's weights ("int4", "float32", ...)."""
        from playground.models import load_model

        return load_model(self.spec.id).weights

    def beam_search(self, prompt, settings, chat_template=False, compare_greedy=False, sample_seed=None,
                    eos_token_ids=None, on_step=None):
        from playground import beam

        return beam.run_beam_search(self.spec.id, prompt, settings, chat_template, compare_greedy, sample_seed,
                                    eos_token_ids, on_step)

    def encoder(self):
        """(tokenizer, text -> ids as every tab reads it, context length)."""
        from playground import decoding
        from playground.models import load_model

        loaded = load_model(self.spec.id)
        return loaded.tokenizer, lambda text: decoding.prompt_ids(loaded, text), loaded.context_length

    def stream(self, contender, settings, max_new_tokens, seed):
        from playground import generation
        from playground.models import load_model

        decoder = generation.Decoder(load_model(self.spec.id), contender.prompt_ids)
        return generation.iter_generation(decoder, settings, max_new_tokens, seed)

    def generated_text(self, records) -> str:
        from playground import generation
        from playground.models import load_model

        loaded = load_model(self.spec.id)
        return generation.generated_text(loaded.tokenizer, [r.id for r in records], loaded.eos_token_ids)

    def score_text(self, text, context_ids=None):
        from playground import scoring

        return scoring.local_score(self.spec.id, text, context_ids)

    def chain_next_token(self, prompt, chain, chat_template=False, top=10) -> dict:
        from playground.samplers.ab import next_token_summary

        return next_token_summary(self.spec.id, prompt, chain, chat_template, top)

    def explorer_tokenizer(self):
        """The model's own Hugging Face tokenizer behind the explorer's interface."""
        from playground.hf_tokenizer import HuggingFaceTokenizer
        from playground.models import load_tokenizer

        return HuggingFaceTokenizer(self.spec.id, load_tokenizer(self.spec.id),
                                    f"{self.spec.description}: its own tokenizer")

    def explorer_entry(self, info) -> tuple[str, str, bool, str]:
        """(description, kind, available, reason) of the model's tokenizer in the explorer's list."""
        return f"{info.description}: its own tokenizer", "model", info.available, info.reason


# An engine answers `availability` from a short request, remembered this long (seconds).
ENGINE_CHECK_SECONDS = 30.0
ENGINE_CHECK_TIMEOUT = 2.0
_ENGINE_CHECKS: dict[str, tuple[float, tuple[bool, str]]] = {}


class EngineBackend(_Common):
    """A model served by an inference engine over HTTP (`playground.engines`)."""

    kind_label = ", engine"
    remote = True

    def state(self, available: bool, reason: str, loaded) -> str:
        """Where it is served, which tabs run it, and whether it answered just now."""
        tokenizer = "the Tokenizer, " if self.capabilities.has("tokenize") else ""
        runs = (f"served by {self.spec.engine.where}; {tokenizer}the Sampling lab, Beam search and Base vs chat "
                "(teacher forcing included) run it, Inside the model runs in-process models only")
        return runs + ("" if available else f" (not answering now: `python -m playground models --check` asks it)")

    def availability(self) -> tuple[bool, str]:
        """Available when the server answers (its list of served models; remembered for a while)."""
        from playground.engines.client import EngineClient, EngineError

        key = f"{self.spec.id} {self.spec.engine.base_url} {self.spec.engine.model}"
        now = time.monotonic()
        cached = _ENGINE_CHECKS.get(key)
        if cached is not None and now - cached[0] < ENGINE_CHECK_SECONDS:
            return cached[1]
        from playground.engines import lab as engine_lab

        state = engine_lab.built(self.spec)  # the client the model already talks through, else a short one
        try:
            if state is not None:
                state.client.served_models()
            else:
                with EngineClient(self.spec.engine, timeout=ENGINE_CHECK_TIMEOUT, retries=0,
                                  name=self.spec.id) as client:
                    client.served_models()
            answer = (True, "")
        except EngineError as exc:
            answer = (False, f"served by {self.spec.engine.where}, which does not answer: {exc}")
        _ENGINE_CHECKS[key] = (now, answer)
        return answer

    def runs_in(self, tab: str | None, available: bool) -> bool:
        """Listed where the tab runs engine models even when the server is down now (using it says why)."""
        need = TAB_NEEDS.get(tab or "")
        return self.capabilities.has(need) if need is not None else available

    def _state(self):
        from playground.engines import lab as engine_lab

        return engine_lab.engine_for(self.spec)

    def open_lab(self, prompt, chat_template, max_prompt_tokens):
        from playground.engines import lab as engine_lab

        return engine_lab.open_ids(self._state(), prompt, chat_template, max_prompt_tokens)

    def lab_view(self, session, settings, ranked=None):
        from playground.engines import lab as engine_lab

        return engine_lab.session_view(self._state(), session, settings, ranked)

    def lab_next_token(self, session, settings, seed):
        from playground.engines import lab as engine_lab

        return next(engine_lab.session_steps(self._state(), session, settings, 1, seed))[0]

    def lab_append_token(self, session, settings, token_id):
        from playground.engines import lab as engine_lab

        return next(engine_lab.session_steps(self._state(), session, settings, 1, 0, forced=int(token_id)))[0]

    def lab_generate(self, session, settings, n, seed, stop_strings=()):
        from playground.engines import lab as engine_lab

        return engine_lab.session_steps(self._state(), session, settings, n, seed, stop_strings)

    def lab_samples(self, session, settings, k, length, seed, stop_strings=()):
        self.require("samples")

    def lab_tokenizer(self, session):
        return self._state().tokenizer

    def weights(self) -> str:
        """What ran: "engine" (the engine's own weights, not known here)."""
        return "engine"

    def constrained(self, prompt, constraint, settings, max_new_tokens, seed, chat_template=False):
        """The engine's own constrained decoding (`engines.structured`): the text, no per-step mask."""
        self.require("constrained")
        from playground.engines import structured

        return structured.constrained_completion(self.spec, prompt, constraint, settings, max_new_tokens, seed,
                                                 chat_template)

    def check(self) -> dict:
        """`models --check`: the server's answer to two small requests (`engines.probe`)."""
        from dataclasses import asdict

        from playground.engines.probe import probe

        return {"engine": asdict(probe(self.spec.engine))}

    def beam_search(self, prompt, settings, chat_template=False, compare_greedy=False, sample_seed=None,
                    eos_token_ids=None, on_step=None):
        from playground import beam

        if prompt is not None and not isinstance(prompt, str):
            raise PlaygroundError("The prompt must be text.")
        return beam.engine_search(self.spec, prompt, settings, chat_template,
                                  compare_greedy or sample_seed is not None, eos_token_ids, on_step)

    def encoder(self):
        """(the entry's tokenizer or None, text -> ids ([] without one: the engine tokenizes), None);
        never asks the engine."""
        from playground import start_tokens
        from playground.models import load_tokenizer

        if not self.spec.tokenizer_from:
            return None, lambda text: [], None
        tokenizer = load_tokenizer(self.spec.id)
        return tokenizer, lambda text: start_tokens.text_ids(tokenizer, text).ids, None

    def stream(self, contender, settings, max_new_tokens, seed):
        from playground.engines import stream as engine_stream

        if contender.chat_messages:
            return engine_stream.EngineRun(self.spec.id, settings, max_new_tokens, seed,
                                           messages=list(contender.chat_messages))
        return engine_stream.EngineRun(self.spec.id, settings, max_new_tokens, seed,
                                       prompt=contender.prompt_ids, prompt_text=contender.prompt_text)

    def generated_text(self, records) -> str:
        """The tokens' bytes through the entry's tokenizer (a character split over two tokens comes out
        whole), else the engine's own token texts."""
        from playground import generation
        from playground.models import load_tokenizer

        kept = [r for r in records if not r.is_eos]
        if self.spec.tokenizer_from and all(r.id >= 0 for r in kept):
            return generation.generated_text(load_tokenizer(self.spec.id), [r.id for r in kept])
        return "".join(r.text for r in kept)

    def score_text(self, text, context_ids=None):
        from playground import scoring

        if context_ids:
            self.require("score_after_context")
        return scoring.engine_scored(self.spec, text, self.explorer_tokenizer)

    def chain_next_token(self, prompt, chain, chat_template=False, top=10) -> dict:
        from playground.engines.chain import chain_next_token

        return chain_next_token(self.spec, prompt, chain, chat_template, top)

    def explorer_tokenizer(self):
        """The engine's own /tokenize (`engines.tokenizer.EngineTokenizer`), built once per model
        through the client the model talks through; a down engine is asked again next time."""
        from playground.engines.client import EngineError

        if not self.capabilities.has("tokenize"):
            raise EngineError(self.capabilities.missing["tokenize"], "unsupported")
        return self._state().explorer()

    def explorer_entry(self, info) -> tuple[str, str, bool, str]:
        """(description, kind, available, reason) of the engine's tokenizer in the explorer's list."""
        if not self.capabilities.has("tokenize"):
            from playground.engines.tokenizer import NO_TOKENIZE

            return info.description, "engine", False, NO_TOKENIZE
        return f"{info.description}: the engine's own tokenizer", "engine", True, ""


def _engine_capabilities(spec: ModelSpec) -> Capabilities:
    where = f"{spec.id} is served by {spec.engine.where}"
    missing = {
        "samples": ("K samples do not run on engine models yet: use Next token or Generate N "
                    "(one engine request per token)."),
        "beam_comparisons": f"{where}: the greedy and sampled comparison paths run on in-process models only.",
        "score_after_context": f"{where}: it scores a text after its start token only.",
        "fim": (f"{where}; the playground fills in the middle only with models it runs itself "
                "(hub, path or gguf entries)."),
        "inside": f"{where}; Inside the model runs in-process models only (it reads the weights).",
        "attribution": (f"{where}; attribution (\"Why this token?\") runs in-process models only: its gradients "
                        "and attention need the weights."),
        "sampler_chain": (f"{where}; the chain's funnel, generation and A/B run on in-process models only: its "
                          "stages read every logit of the vocabulary, which an engine does not send (next-token "
                          "--chain runs on a llama.cpp engine, which applies the chain itself)."),
    }
    if spec.engine.kind not in ("llama.cpp", "vllm"):
        missing["constrained"] = (f"{where}: its completions endpoint takes no constraint; structured outputs run "
                                  "on in-process models, llama.cpp and vLLM.")
    if not spec.engine.tokenize:
        missing["tokenize"] = f"{where}: this engine does not provide /tokenize (tokenize = false in its entry)."
    if not spec.tokenizer_from:  # the chat template view: its tokens and loss mask
        missing["template_view"] = (f"This engine model ({spec.id}) has no tokenizer named in its entry: the chat "
                                    "template is the engine's own and is not shown (name a registry model in the "
                                    "entry's `tokenizer` field to see it and its loss mask).")
    return Capabilities(missing)


def backend_for(model: str | ModelSpec) -> Backend:
    """The backend of a registry model (an id or its spec); raises UnknownIdError for an unknown id."""
    if isinstance(model, str):
        from playground.models import get_spec

        model = get_spec(model)
    if model.source == "engine":
        return EngineBackend(model, _engine_capabilities(model))
    return InProcessBackend(model, Capabilities())


def model_infos(include_hidden: bool = True) -> list:
    """`models.list_models`, each model's `available` and `reason` its backend's (an engine model:
    whether its server answers, asked at most every `ENGINE_CHECK_SECONDS`)."""
    from dataclasses import replace

    from playground import models

    infos = []
    for info in models.list_models(include_hidden=include_hidden):
        available, reason = backend_for(info.id).availability()
        infos.append(replace(info, available=available, reason=reason))
    return infos


def runs_in(info, tab: str | None) -> bool:
    """Whether a listed model (`ModelInfo`) is offered in `tab` (a ui module name: "sampling", "beam",
    "chat", ...; None: any): an available one, where the tab's need is among its capabilities (an
    engine model even while its server is down: using it says so)."""
    return backend_for(info.id).runs_in(tab, info.available)


def forget_engine_checks() -> None:
    """Forget the remembered engine answers (tests)."""
    _ENGINE_CHECKS.clear()
