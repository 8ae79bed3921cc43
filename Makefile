# The two commands: `make run` and `make test`. Both set up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench bench-update bench-accuracy lint serve clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# (--no-compile: byte-compiling every file of every package, litellm's 3,000 among them,
	# costs about a minute; the modules the tests import are compiled when first imported)
	$(PY) -m pip install -q --no-compile -e '.[dev,fast,cli,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rxgpt chat "Explain server-sent events in one paragraph." --log rxgpt-chat.log.jsonl

# (PYTHONDONTWRITEBYTECODE emptied: the suite starts ~100 Python processes, which then
# share one compiled copy of rxgpt instead of each compiling it again)
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -p no:cacheprovider

# `make bench` writes its report and plot to benchmarks/results/ (untracked): a fresh
# clone's tracked files stay unchanged. `make bench-update` refreshes the committed ones.
BENCH_OUT := benchmarks/results
bench: $(STAMP)
	mkdir -p $(BENCH_OUT)
	$(PY) -m benchmarks --report $(BENCH_OUT)/benchmark-latest.md --plot $(BENCH_OUT)/performance.png

bench-accuracy: $(STAMP)
	$(PY) -m benchmarks.bench_accuracy

bench-update: $(STAMP)
	$(PY) -m benchmarks --report docs/benchmark-latest.md --plot docs/performance.png

lint: $(STAMP)
	$(VENV)/bin/ruff check rxgpt tests benchmarks
	$(VENV)/bin/ruff format --check rxgpt tests benchmarks
	$(VENV)/bin/mypy

serve: $(STAMP)
	$(VENV)/bin/rxgpt serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
