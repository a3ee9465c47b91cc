"""The tokenizer tab's presets: the lecture's demos and texts that make the "token tax" visible.

Plain data, no gradio. Each preset names the text, the tokenizer to explore it with and the
tokenizers to compare. What it leaves out: the BPE lab's corpus (in `assets/corpus/`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    text: str
    tokenizer: str
    compare: tuple[str, ...]


# The lecture's tokenizer demo (tiktokenizer with Meta-Llama-3): 33 tokens, ids listed on the slide.
LECTURE_CAT = "A cat was climbing a tree or Tree.\nTree was climbed by a cat.\nA tree-climbing cat...\n一隻貓正在爬樹。"
LECTURE_CAT_IDS = [
    32, 8415, 574, 30608, 264, 5021, 477, 9119, 627, 6670, 574, 45519, 555, 264, 8415, 627, 32, 5021, 31717,
    318, 7278, 8415, 9522, 15120, 37795, 119, 80631, 241, 97655, 76207, 105, 111398, 1811,
]

PRESETS = [
    Preset("A cat was climbing a tree (lecture, Llama 3)", LECTURE_CAT, "llama-3",
           ("llama-3", "cl100k_base", "o200k_base", "bytes")),
    Preset("Count the r's in strawberry",
           "How many r's are in the word strawberry?\nstrawberry Strawberry STRAWBERRY strawberries\n"
           "s t r a w b e r r y", "cl100k_base", ("cl100k_base", "o200k_base", "llama-3", "r50k_base")),
    Preset("Arithmetic on long numbers",
           "12345678 + 87654321 = 99999999\n3.14159265358979 * 2 = 6.28318530717958\n"
           "In 1999 there were 1,234,567 users; in 2024 there were 98765432.",
           "cl100k_base", ("r50k_base", "cl100k_base", "o200k_base", "llama-3")),
    Preset("Multilingual: one sentence, nine languages",
           "The cat is climbing the tree.\nDie Katze klettert auf den Baum.\nLe chat grimpe à l'arbre.\n"
           "Кошка лезет на дерево.\n猫正在爬树。\n猫が木に登っています。\n고양이가 나무에 오르고 있다.\n"
           "बिल्ली पेड़ पर चढ़ रही है।\nالقطة تتسلق الشجرة.",
           "cl100k_base", ("r50k_base", "cl100k_base", "o200k_base", "llama-3")),
    Preset("Chinese",
           "一隻貓正在爬樹。樹上有一隻鳥，牠看著那隻貓。大語言模型把文字切成詞元。",
           "cl100k_base", ("r50k_base", "cl100k_base", "o200k_base", "llama-3")),
    Preset("Code with indentation",
           "def count_letters(word: str, letter: str) -> int:\n"
           "    \"\"\"How often `letter` occurs in `word`.\"\"\"\n"
           "    total = 0\n"
           "    for ch in word:\n"
           "        if ch == letter:\n"
           "            total += 1\n"
           "    return total\n\n\n"
           "print(count_letters(\"strawberry\", \"r\"))  # 3\n",
           "r50k_base", ("r50k_base", "p50k_base", "cl100k_base", "o200k_base")),
    Preset("Emoji", "I ❤️ my 🐈 and our 🌳! 👍🏽 🇺🇸 👩‍👩‍👧‍👦 🐟🐠🐡",
           "cl100k_base", ("cl100k_base", "o200k_base", "llama-3", "bytes")),
    Preset("English prose",
           "It is a truth universally acknowledged, that a single man in possession of a good fortune "
           "must be in want of a wife.", "cl100k_base", ("r50k_base", "cl100k_base", "o200k_base", "llama-3")),
]
PRESETS_BY_NAME = {p.name: p for p in PRESETS}
