# The README's two commands (`make run`, `make test`) set everything up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export INFINITY_HOME := $(CURDIR)/build/infinity
STAMP := $(VENV)/.setup-$(shell cat pyproject.toml constraints.txt Makefile | sha1sum | cut -c1-12)
# A real Infinity server (`infinity_emb v2`) for the remote-embedding tests. Its `server`
# extra pins uvicorn, click and rich below msearch's, so it lives in a virtualenv of its own.
INFINITY_SERVER := build/infinity-server

.PHONY: setup run test test-fast lint bench clean

# Debian packages, installed when missing (as root, or through passwordless sudo).
APT_INSTALL = { echo "installing $(1) with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null) \
	  || (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null); }

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || $(call APT_INSTALL,ffmpeg)
	@# The web page's end-to-end tests drive Debian's Chromium (Playwright never downloads one).
	@command -v chromium >/dev/null || $(call APT_INSTALL,chromium)
	@# ...and a CJK font, so that its tests see Chinese queries and names as users do.
	@test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc || $(call APT_INSTALL,fonts-noto-cjk)
	@# Debian's flite speaks the sentences the speech tests look for.
	@command -v flite >/dev/null || $(call APT_INSTALL,flite)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch first and pinned: any later resolution of a looser torch pulls CUDA wheels.
	$(PIP) install -q torch==2.13.0
	@# basicsr's sdist build asks for torch: the build environment gets the same pin.
	$(PIP) install -q --build-constraint constraints.txt -e '.[embed,video,speech,enhance,bench,dev]'
	@# ColQwen2 pages (documents.model): colpali-engine 0.3.8, the release for torch 2.13, asks
	@# for transformers 4.47 but runs on this stack's 4.57 with msearch/embedding/colpali.py's
	@# mends; without its dependencies, so that pip keeps the stack's transformers.
	$(PIP) install -q --no-deps colpali-engine==0.3.8
	rm -f $(VENV)/.setup-*
	touch $@

$(INFINITY_SERVER)/.ready: constraints.txt
	test -x $(INFINITY_SERVER)/bin/python || python3 -m venv $(INFINITY_SERVER)
	$(INFINITY_SERVER)/bin/python -m pip install -q --upgrade pip
	$(INFINITY_SERVER)/bin/python -m pip install -q torch==2.13.0
	$(INFINITY_SERVER)/bin/python -m pip install -q 'infinity-emb[torch,server]==0.0.78' \
	  'aiohttp>=3.9' 'transformers>=4.47,<5' 'sentence-transformers<4' 'huggingface_hub<1' \
	  'numpy<2' pillow
	touch $@

run: setup
	$(VENV)/bin/msearch serve

lint: setup
	$(VENV)/bin/ruff format --check msearch tests scripts
	$(VENV)/bin/ruff check msearch tests scripts
	$(VENV)/bin/mypy msearch

# Tests build their own models and must never reach a model hub.
test: export HF_HUB_OFFLINE := 1
test: export TRANSFORMERS_OFFLINE := 1
test: setup $(INFINITY_SERVER)/.ready lint
	$(VENV)/bin/pytest -q -rfEs $(PYTEST_ARGS)

# The unit tier alone (pure logic, an in-memory engine): seconds, for the edit-test loop.
# `make test` runs it too, with tests/integration (real engines, stores, FFmpeg) and
# tests/e2e (the msearch command, uvicorn, Chromium).
test-fast: export HF_HUB_OFFLINE := 1
test-fast: export TRANSFORMERS_OFFLINE := 1
test-fast: setup
	$(VENV)/bin/pytest -q -rfEs tests/unit $(PYTEST_ARGS)

bench: export HF_HUB_OFFLINE := 1
bench: setup
	$(PY) scripts/bench_index.py --n 200
	$(PY) scripts/bench_search.py --n 100000
	$(PY) scripts/bench_scenes.py
	$(PY) scripts/bench_load.py --images 2000 --clients 64 --seconds 60
	$(PY) scripts/bench_upload_memory.py --model demo

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
