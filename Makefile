# The two commands: `make run` and `make test`. Both set up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench bench-update bench-accuracy lint serve clean

$(STAMP): pyproject.toml
	# (a venv without pip, then the newest pip put in by the system's: ensurepip would install
	# and byte-compile an older pip only for it to be replaced, ~8 s; ensurepip when the
	# system's pip cannot install into another interpreter)
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	$(PY) -m pip --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip --python $(PY) install -q --no-compile --upgrade pip \
		|| ($(PY) -m ensurepip && $(PY) -m pip install -q --no-compile --upgrade pip)
	# (--no-compile: byte-compiling every file of every package, litellm's 3,000 among them,
	# costs about a minute; the modules the tests import are compiled when first imported)
	$(PY) -m pip install -q --no-compile -e '.[dev,fast,cli,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rxgpt chat "Explain server-sent events in one paragraph." --log rxgpt-chat.log.jsonl

# (PYTHONDONTWRITEBYTECODE emptied: the suite starts ~100 Python processes, which then
# share one compiled copy of rxgpt instead of each compiling it again. -n: one pytest worker
# per core, at most 4: most of a test's time is waiting on sockets, processes and
# deadlines, so two workers on two cores take ~110 s where one takes ~205 s)
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4

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

# (`make lint` alone needs ruff and mypy: not installed by `make test`)
LINT_STAMP := $(VENV)/.lint-stamp
$(LINT_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-compile -e '.[lint]'
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check rxgpt tests benchmarks
	$(VENV)/bin/ruff format --check rxgpt tests benchmarks
	$(VENV)/bin/mypy

serve: $(STAMP)
	$(VENV)/bin/rxgpt serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
