"""The sampler chain: every sampler people use, as units, in an order the user chooses.

`pool` (the tokens in play and what samplers read), `penalties` (repetition penalties in
transformers', llama.cpp's and OpenAI's definitions, no-repeat n-gram, DRY), `cuts` (top-k, top-p,
min-p, typical-p, top-n-sigma, epsilon, eta, XTC), `temperature` (temperature, dynamic
temperature, mirostat v2), `chain` (parse/print llama.cpp-named chains, presets, stage-by-stage
results, the inverse-CDF draw), `ab` (generation with a chain; A/B on common random numbers).

What it leaves out: the lab's four-rule fast path (`playground.sampling`), running the model
(`playground.decoding`), drawing (`playground.plots`), engines' own samplers (`playground.engines`).
"""
