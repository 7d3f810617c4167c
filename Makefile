# headbayes: every target installs into .venv first (fresh machine friendly).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SWEEP_DIR := outputs/sweeps/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: help install run test test-all sweep bench bench-full bench-uci bench-classification bench-lora bench-pinn clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install headbayes with its test tools

run: $(STAMP)  ## run the seed experiment and print its report
	$(PY) -m headbayes run +experiment=sin_head

test: $(STAMP)  ## the test suite without tests marked slow (CI runs this)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)  ## every test, slow ones included
	$(PY) -m pytest -q

sweep: $(STAMP)  ## a 2x2 demo sweep (step size x seed), then its summary table
	$(PY) -m headbayes run -m +experiment=sin_head sampler.step_size=3e-4,1e-3 seed=0,1 hydra.sweep.dir=$(SWEEP_DIR)
	$(PY) -m headbayes summarize $(SWEEP_DIR)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## benchmarks against hand-written baselines and NumPyro (scaling: quick); writes docs/benchmarks.md
	$(PY) scripts/bench.py
	$(PY) scripts/bench_numpyro.py
	$(PY) scripts/bench_compile.py
	$(PY) scripts/bench_report.py
	$(PY) scripts/bench_stats.py
	$(PY) scripts/bench_sweep.py
	$(PY) scripts/bench_gibbs.py
	$(PY) scripts/bench_scaling.py --mode quick

bench-uci: $(STAMP)  ## the UCI benchmark (4 datasets x 20 standard splits); writes docs/uci.md
	$(PY) scripts/bench_uci.py

bench-pinn: $(STAMP)  ## the B-PINN problems, masks head / last two / all side by side; writes docs/pinn.md
	$(PY) scripts/bench_pinn.py

bench-lora: $(STAMP)  ## sin_lora: LoRA adapters vs head only vs every weight; writes its section of docs/benchmarks.md
	$(PY) scripts/bench_lora.py

bench-classification: $(STAMP)  ## moons_head, digits_cnn_head, growing_noise_head; writes docs/classification.md
	$(PY) scripts/bench_classification.py

bench-full: $(BENCH_STAMP)  ## the same with the full scaling grid (widths to 4096, 10^6 points)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_numpyro.py
	$(PY) scripts/bench_compile.py
	$(PY) scripts/bench_report.py
	$(PY) scripts/bench_stats.py
	$(PY) scripts/bench_sweep.py
	$(PY) scripts/bench_gibbs.py
	$(PY) scripts/bench_scaling.py --mode full

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
