#!/bin/sh
# The issue-8 bench on a bare GPU machine (the `device` tool): random weights shaped like the packaged
# models (it has no packaged weights and no internet). A pinned transformers wheel, when carried in
# .whl/ (git-ignored), is installed first. Prints bench_speed.py's JSON; extra arguments pass through.
set -e
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" >&2
exec python3 bench/bench_speed.py --new-tokens 128 --clients 1 8 32 64 --requests 320 --repeats 30 "$@"
