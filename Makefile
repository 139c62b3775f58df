# oven: two commands.  `make run` sets everything up and starts the service;
# `make test` sets up what the tests need and runs lint, types and the whole suite.
# Both are idempotent: a second run only checks stamps and starts.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Fonts a capture needs (installed size 21 MB; `oven doctor` checks them in Chromium): Latin with
# the metrics of Arial/Times/Courier (liberation) and wide Latin/Greek/Cyrillic (dejavu-core); CJK,
# Chinese with kana and Hangul, in one 5 MB font (wqy-microhei; fonts-noto-cjk is 91 MB); colour
# emoji (noto-color-emoji; without it Chromium draws emoji in black or as empty boxes).
# chromium-headless-shell is what captures run in (oven.capture._settings); chromium, the full
# browser, is kept for a config that names /usr/bin/chromium and for the tests' own pages.
# webp: webpmux assembles canvas frames into an animated WebP (oven.encode._webpmux).
APT_FONTS := fonts-liberation fonts-dejavu-core fonts-wqy-microhei fonts-noto-color-emoji
APT_RUN := chromium-headless-shell chromium ffmpeg webp $(APT_FONTS)
APT_TEST := prometheus time
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck pytest bench bench-mem bench-burst bench-ready soak system-deps system-test-deps clean

run: $(VENV)/.run-installed system-deps
	$(VENV)/bin/oven serve $(ARGS)

test: $(VENV)/.test-installed system-deps system-test-deps lint typecheck pytest

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check oven tests bench

typecheck: $(VENV)/.test-installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.test-installed system-deps system-test-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed system-deps
	$(PY) bench/capture.py
	$(PY) bench/runtime.py
	$(PY) bench/memory.py

# The capture benchmark under the memory harness: the peak of its whole process tree.
bench-mem: $(VENV)/.test-installed system-deps
	$(VENV)/bin/oven mem --label capture --out var/mem -- $(PY) bench/capture.py

# 1 200 submissions from 60 clients + 100 held GET /grab waits; /health and /ready latency
# (one JSON line; exits 1 when p99 > 50 ms, max > 250 ms, a 5xx, or an admitted job not complete).
bench-burst: $(VENV)/.test-installed system-deps
	$(PY) bench/burst.py

# The old architecture against oven (real and virtual clock) in one run: wall, speed-up,
# CPU-seconds per grab by component, peak tree PSS, stills/s (one JSON line, medians of 3).
bench-side-by-side: $(VENV)/.test-installed system-deps
	$(PY) bench/side_by_side.py $(ARGS)

bench-ready: $(VENV)/.test-installed system-deps
	$(PY) bench/ready.py $(ARGS)

# Long reliability run, not part of `make test`: 500 mixed grabs + 20 PTY pastes, one JSON line
# (OVEN_SOAK_GRABS / OVEN_SOAK_PASTES to resize); exits 1 when a check fails.
soak: $(VENV)/.test-installed system-deps system-test-deps
	$(PY) bench/soak.py
	OVEN_FUZZ_EXAMPLES=300 $(VENV)/bin/pytest -q tests/security/test_fuzz.py

# Debian packages, installed only when missing (apt-get update once, then install).
system-deps:
	@missing=""; for p in $(APT_RUN); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

system-test-deps:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

$(PY): | system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.run-installed

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
