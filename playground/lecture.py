"""The lecture's demos, in lecture order: each one a stable id, a line of context and the link that
opens it ready.

Every demo of `../shared/lecture/llm-lecture-notes.txt` (its `ollama run` demos, the tokenizer
demo, the sampling Modelfiles, the chat template and loss slides, the architecture tables) is one
`Demo`: the tab it opens, and the link parameters (`playground.link_query`) that set that tab up and
say what to compute (`run`) and which result to bring into view (`view`). `/?demo=<id>` opens it;
`python -m playground demos --json` lists them.

The settings are chosen so the packaged small models make the lecture's point: the chat demos
decode greedily or at temperature 0.3 (sampled at temperature 1, a 135M chat model wanders off:
"the color of fuchsia, an alabreon species"; greedy, it repeats one line of a poem), and each line
says so. Where the small models cannot make the point (the opening demo asks a chat model what it
is; FIM needs a model trained for it), `needs` says what would (a bigger model from the models
file, see README "Serving a large class").

What it leaves out: how a tab applies the parameters (`playground.ui.link_wiring`), the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GREEDY = {"temperature": "0"}
QUICK_CHAT = {"max_tokens": "64", **GREEDY}
# Greedy decoding makes a 135M chat model repeat one line of a poem; T = 0.3 within top-p 0.9 keeps
# it on topic and still varied (seed 42, the default).
LOW_TEMPERATURE_CHAT = {"max_tokens": "64", "temperature": "0.3", "top_p": "0.9"}
# "JSON mode is a mask": a small schema (as the Constraint section's text)
JSON_MODE_SCHEMA = ('{"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, '
                    '"country": {"type": "string", "maxLength": 20}}, "required": ["city", "country"], '
                    '"additionalProperties": false}')


@dataclass(frozen=True)
class Demo:
    """One lecture demo: `query` holds the tab's link parameters (strings, as in a URL)."""

    id: str
    section: str
    title: str
    line: str
    tab: str
    query: dict = field(default_factory=dict)
    needs: str = ""

    @property
    def url(self) -> str:
        """Path and query relative to the app root."""
        return f"/?demo={self.id}"

    @property
    def poll(self) -> str:
        """The class poll this demo has (`playground.rooms.polls.KINDS`), or ""."""
        return POLLS.get(self.id, "")

    def as_dict(self) -> dict:
        return {"id": self.id, "section": self.section, "title": self.title, "line": self.line,
                "tab": self.tab, "url": self.url, "needs": self.needs, "query": dict(self.query), "poll": self.poll}


# Demos with a class poll (a class room's presenter starts it on what the demo shows): demo id -> kind
POLLS = {"base-model-distribution": "next_token", "tokenization": "count", "base-vs-chat-poem": "chat"}
POLL_NAMES = {"next_token": "guess the next token", "count": "how many tokens?", "chat": "which is the chat model?"}


DEMOS: tuple[Demo, ...] = (
    Demo("what-is-an-llm", "What is a large language model?", "Ask a chat model what it is",
         "The lecture opens with `ollama run qwen3`: the same question to a base and a chat model (temperature 0.3).",
         "chat", {"prompt": "What is a large language model?", "run": "side", "view": "columns", **LOW_TEMPERATURE_CHAT},
         needs="A convincing answer needs a bigger chat model (Qwen3 or Llama 3.1 8B): add one to the models file "
               "or an engine (README, Serving a large class); the 135M model answers, but thinly."),
    Demo("tokenization", "Tokenization", "The lecture's text in Llama 3's tokenizer",
         "The tiktokenizer demo: 33 tokens with the slide's ids; the Chinese sentence splits inside characters.",
         "tokenizer", {"preset": "a-cat-was-climbing-a-tree-lecture-llama-3", "view": "tokens"}),
    Demo("tokenization-bytes", "Tokenization", "Down to bytes: UTF-8",
         "Each token's bytes: English is 1 byte per character, Chinese 3; a token can end inside a character.",
         "tokenizer", {"preset": "chinese", "view": "bytes"}),
    Demo("tokenizers-compare", "Tokenization", "One sentence in nine languages, four tokenizers",
         "The same text costs very different token counts: GPT-2's vocabulary against GPT-4o's and Llama 3's.",
         "tokenizer", {"preset": "multilingual-one-sentence-nine-languages", "view": "compare"}),
    Demo("bpe-training", "Byte-pair encoding", "Train BPE on Pride and Prejudice",
         "The lecture's algorithm, live: 500 merges of the most frequent pair; drag the slider to replay them.",
         "tokenizer", {"merges": "500", "run": "bpe", "view": "bpe"}),
    Demo("special-tokens", "Byte-pair encoding", "Special tokens: the beginning of a sequence",
         "With special tokens on, Llama 3's tokenizer puts <|begin_of_text|> in front. An end-of-sequence "
         "token is never added to a prompt: the model generates it to stop (the \"End of sequence\" demo).",
         "tokenizer", {"tokenizer": "llama-3", "text": "What is the color of oranges?", "special": "1",
                       "view": "tokens"}),
    Demo("tokenization-strawberry", "Tokenization issues", "Counting the r's in strawberry",
         "cl100k_base reads ' strawberry' as one token, 'strawberry' at a line's start as 'str' + 'aw' + "
         "'berry', ' STRAWBERRY' as ' STR' + 'AW' + 'B' + 'ERRY': the model never sees single letters.",
         "tokenizer", {"preset": "count-the-r-s-in-strawberry", "view": "tokens"}),
    Demo("tokenization-numbers", "Tokenization issues", "Arithmetic on long numbers",
         "Numbers split into arbitrary chunks of digits: one reason LLMs are bad at math.",
         "tokenizer", {"preset": "arithmetic-on-long-numbers", "view": "tokens"}),
    Demo("tokenization-not-one-to-one", "Tokenization issues", "Many token streams, one text",
         "Other id sequences decode to exactly the same text: the mapping is not one-to-one.",
         "tokenizer", {"tokenizer": "cl100k_base", "text": "strawberry", "view": "alternatives"}),
    Demo("rare-tokens", "Tokenization issues", "Tokens with few training examples",
         "The vocabulary's least trained entries: output rows nearest the mean, and a request to repeat one.",
         "inside", {"model": "gemma-3-270m", "run": "rare", "view": "rare"}),
    Demo("strawberry-chat", "Tokenization issues", "Ask a chat model to count letters",
         "`ollama run llama3.1` on the strawberry question, greedy: small models get it wrong.",
         "chat", {"prompt": "How many r's are in the word strawberry?", "run": "side", "view": "columns",
                  **QUICK_CHAT}),
    Demo("teacher-forcing", "LLM basics", "Teacher forcing: every position in one pass",
         "Feed in the ground truth, read P(actual next token) at every position: the training loss.",
         "inside", {"text": "The capital of France is Paris. The capital of Germany is Berlin.", "run": "look",
                    "view": "forcing"}),
    Demo("encoder-only", "Architectures", "Encoder-only: BERT's input",
         "WordPiece pieces (play ##ing), segment A and B, positions: each input vector is a sum of three rows; "
         "an encoder's attention is bidirectional, a decoder's causal.",
         "inside", {"run": "encoder", "view": "encoder"}),
    Demo("architecture", "Architectures", "A transformer's parameters, counted",
         "The real model's configuration; GPT-1, GPT-3, Mistral 7B and Llama 3 from one formula.",
         "inside", {"run": "look", "view": "table"}),
    Demo("capacity", "Architectures", "Up to 2 bits per parameter",
         "How much a model can memorise at most (Allen-Zhu and Li 2024): this model and the lecture's, in bytes.",
         "inside", {"run": "look", "view": "capacity"}),
    Demo("state-space", "Sequence models", "A state-space layer, step by step and unrolled",
         "x_t = A x_{t-1} + B u_t, y_t = C x_t: the same outputs both ways; unrolled it is a lower-triangular "
         "matrix, and its state stays fixed while a KV cache grows.",
         "inside", {"text": "The capital of France is Paris. The capital of Germany is Berlin.", "run": "look",
                    "view": "ssm"}),
    Demo("attention", "Architectures", "Causal self-attention, head by head",
         "One head's attention weights (rows sum to 1, nothing above the diagonal) and all heads of a layer.",
         "inside", {"run": "look", "layer": "5", "view": "attention"}),
    Demo("logit-lens", "Architectures", "The logit lens: the prediction forming layer by layer",
         "The output layer applied to every layer's hidden state.",
         "inside", {"run": "lens", "view": "lens"}),
    Demo("kv-cache", "Architectures", "The KV cache",
         "Bytes per token of the real cache, and why grouped-query attention shrinks it.",
         "inside", {"run": "look", "view": "kv"}),
    Demo("why-paris", "Architectures", "Why did it say Paris?",
         "Which prompt tokens made Gemma predict ' Paris': occlusion, gradient x input and integrated gradients "
         "side by side, with attention rollout (not an attribution) for the comparison.",
         "why", {"model": "gemma-3-270m", "prompt": "The capital of France is the city of", "target": " Paris",
                 "steps": "16", "run": "why", "view": "scores"}),
    Demo("base-model-distribution", "Decoder-only models", "A base model's next-token distribution",
         "`ollama run llama3.1:8b-text`: the whole distribution over the vocabulary after a prompt.",
         "sampling", {"model": "gemma-3-270m", "prompt": "What Is An LLM", "preset": "random", "view": "chart"}),
    Demo("sampling-greedy", "Sampling: greedy search", "Greedy: always the most probable token",
         "The Modelfile `llama3.1:greedy` (temperature 0): one token kept; Generate N continues greedily.",
         "sampling", {"preset": "greedy", "run": "generate", "n": "20", "view": "text"}),
    Demo("beam-search", "Sampling: beam search", "Greedy vs beam search",
         "Beam search keeps 4 candidates and finds a sequence with a higher total log-probability.",
         "beam", {"preset": "greedy-vs-beam", "tokens": "8", "view": "tree"}),
    Demo("beam-length-penalty", "Sampling: beam search", "Beam search: the length penalty",
         "score = log p / length ** L: with L = -1 short answers win.",
         "beam", {"preset": "short-answers-win-length-penalty-1", "tokens": "10", "collapse": "1", "view": "tree"}),
    Demo("sampling-random", "Sampling: random", "Temperature 1: sample the model's distribution",
         "The Modelfile `llama3.1:temp1_random`: every token keeps its probability; the tail gets picked too.",
         "sampling", {"preset": "random", "run": "generate", "n": "20", "view": "text"}),
    Demo("sampling-top-k", "Sampling: top-k", "Top-k: keep the 10 most probable",
         "The Modelfile `llama3.1:top10`: a fixed cut, whatever the shape of the distribution.",
         "sampling", {"preset": "top-10", "view": "chart"}),
    Demo("sampling-nucleus", "Sampling: top-p", "Nucleus (top-p 0.9)",
         "The Modelfile `llama3.1:top-p`: keep the smallest set of tokens with 90% of the probability.",
         "sampling", {"preset": "nucleus", "view": "chart"}),
    Demo("sampling-min-p", "Sampling: min-p", "Min-p 0.1",
         "The Modelfile `llama3.1:min-p`: keep tokens with at least 10% of the top token's probability.",
         "sampling", {"preset": "min-p", "view": "chart"}),
    Demo("temperature-low", "Sampling: temperature", "Low temperature (0.3) sharpens",
         "T < 1 sharpens the distribution; T = 0 is greedy.",
         "sampling", {"preset": "random", "temperature": "0.3", "view": "chart"}),
    Demo("temperature-high", "Sampling: temperature", "High temperature (2.5) flattens",
         "T > 1 flattens it towards uniform: the entropy rises, nonsense gets likely.",
         "sampling", {"preset": "random", "temperature": "2.5", "view": "chart"}),
    Demo("eos", "Sampling: when do we stop?", "End of sequence",
         "A chat model through its template: P(end of sequence) in the numbers, and generation stops at it.",
         "sampling", {"model": "smollm2-135m-instruct", "chat_template": "1", "prompt": "What is the capital of France?",
                      "preset": "greedy", "run": "generate", "n": "40", "view": "text"}),
    Demo("base-vs-chat-poem", "Instruction tuning", "Write me a poem: base vs chat",
         "The base model just continues the text; the chat model answers. Low temperature (0.3, top-p 0.9), 64 tokens.",
         "chat", {"run": "poem", "view": "columns", **LOW_TEMPERATURE_CHAT}),
    Demo("chat-template", "Instruction tuning", "The chat template",
         "The lecture's dialogue as the model sees it: [bot], headers, [eot], with its real special tokens.",
         "chat", {"run": "none", "view": "template"}),
    Demo("loss-mask", "Instruction tuning", "The fine-tuning loss mask",
         "Supervised fine-tuning trains only on the assistant's replies and their end-of-turn token.",
         "chat", {"run": "none", "view": "loss"}),
    Demo("chatbot-context", "Instruction tuning: inference", "A chatbot program: two turns about oranges",
         "The program manages the context and writes the headers; greedy. The base model gets the same text.",
         "chat", {"run": "oranges", "view": "conversation", **QUICK_CHAT, "max_tokens": "40"}),
    Demo("apples-diet", "Instruction tuning", "What to do, not what not to do",
         "The apples diet, greedy: the base model continues the text; the 135M chat model answers with a "
         "refusal it learned as a template (\"I'm sorry ... I don't have the capability\"), not the slide's plan.",
         "chat", {"run": "apples", "view": "columns", **QUICK_CHAT},
         needs="The slide's answer (a helpful apples plan: fine-tuning taught the model what to do, never what not "
               "to do) comes from a bigger chat model: add one to the models file (README, Serving a large class)."),
    Demo("fill-in-the-middle", "Instruction tuning: code completion", "Fill-in-the-middle",
         "A document cut into prefix, suffix and middle, with the sentinel tokens, in training order.",
         "chat", {"run": "fim", "view": "fim"},
         needs="Running it live needs a FIM-trained model (e.g. a Qwen2.5-Coder or StarCoder2 GGUF in the models file)."),
    Demo("json-mode", "Tool use and structured outputs", "JSON mode is a mask",
         "A JSON schema compiled to a mask on the next-token distribution: at each step the grammar's allowed "
         "tokens keep their probabilities, renormalised; the free text of the same prompt beside it (greedy).",
         "sampling", {"model": "gemma-3-270m", "prompt": "Paris is the capital of France. As JSON:", "preset": "greedy",
                      "constraint_kind": "JSON schema", "constraint": JSON_MODE_SCHEMA, "constraint_tokens": "40",
                      "run": "constrain", "view": "constraint"}),
)
DEMOS_BY_ID = {demo.id: demo for demo in DEMOS}


def demo(demo_id: str) -> Demo | None:
    return DEMOS_BY_ID.get(demo_id)
