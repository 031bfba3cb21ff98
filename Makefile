# ReclaimGym: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# torch is pinned to the CPU build these machines carry; an unpinned torch pulls CUDA.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench headline lint clean

$(VPY):
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "$(TORCH)"
	$(VPY) -m pip install -q -e ".[dev,rl,cluster,tune,offline]" "$(TORCH)"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/reclaim demo

test: $(STAMP)
	$(VPY) -m pytest -q -n 2 -p no:cacheprovider

bench: $(STAMP)
	$(VENV)/bin/reclaim bench

# The v1 headline (experiments/results/headline-v1/README.md): hours on 2 cores. It
# resumes: finished runs and evaluations are kept, killed trainings continue from their
# newest checkpoint, so rerun it until it prints the table.
# The committed results are named explicitly: a bare `reclaim compare` writes under ./results/.
HEADLINE_ARGS ?= --name headline-v1 --results-dir experiments/results --algos ppo,a2c --seeds 3 --total-timesteps 1000000 \
	--train-scenarios split:train --test-scenarios split:test --eval-seeds 5 --no-normalize-reward \
	--eval-freq 100000 --eval-episodes 2 --checkpoint-freq 50000 --jobs 2
headline: $(STAMP)
	$(VENV)/bin/reclaim compare $(HEADLINE_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
