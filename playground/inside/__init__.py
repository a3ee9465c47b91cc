"""What is inside the model: the lecture's architecture part on the loaded models.

- `arch`: the configuration card, parameters counted from the loaded weights, and the one formula
  that gives the lecture's table (GPT-1 ... Llama 3 405B) from published configurations.
- `passes`: the one forward pass (eager attention, attentions and hidden states kept) that serves
  every view of a text, cached per (model, text) on the model's runtime.
- `attention`: one layer's and head's attention weights, all heads of a layer grouped by the
  key/value head they share, the layer's kind (sliding window or full).
- `lens`: the logit lens (final norm and output layer applied to every layer's hidden state).
- `forcing`: teacher forcing read from the same pass (each token's probability, their product).
- `kv`: KV cache bytes per token from the configuration, against the real cache; MHA vs GQA.

What it leaves out: drawing (`playground.plots.inside`) and any gradio (`playground.ui.inside_tab`).
"""
