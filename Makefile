# ReclaimGym: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# torch is pinned to the CPU build these machines carry; an unpinned torch pulls CUDA.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench lint clean

$(VPY):
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "$(TORCH)"
	$(VPY) -m pip install -q -e ".[dev,rl,cluster,tune]" "$(TORCH)"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/reclaim demo

test: $(STAMP)
	$(VPY) -m pytest -q -n 2 -p no:cacheprovider

bench: $(STAMP)
	$(VENV)/bin/reclaim bench

lint: $(STAMP)
	$(VPY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
