"""LLM playground backend: small language models, tokenizers and the computations the tabs show.

Nothing in this package imports gradio except `playground.ui`, so the backend runs in scripts,
notebooks, benchmarks and on a GPU machine without the web stack. What it leaves out: the web
page (`playground.ui`) and the launcher (`app.py`).
"""
