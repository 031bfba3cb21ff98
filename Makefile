# ReclaimGym: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# torch is pinned to the CPU build these machines carry; an unpinned torch pulls CUDA.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench headline headline-v1 lint clean

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

# The v2 headline (issue #26; experiments/results/headline-v2/): at least two learners, one
# of them the best imitation-plus-fine-tuning design of the agent-v2 ablation
# (experiments/agent_v2.py), against every stock heuristic, every tuned heuristic and the
# oracle, on the v2 physics. HEADLINE_ALGOS: SB3 algorithms and learner recipes
# (docs/training.md, "reclaim compare"); the default is the ablation's choice (experiments/results/agent-v2/README.md).
# The learners act on the ablation's interface (agent_v2.INTERFACE: observation v2, one
# decision a second, no dead-band) and budget (agent_v2.Budget: 3 DAgger rounds of 4
# episodes per scenario, 200 k env steps of PPO; 2 hosts per training scenario,
# agent_v2.PPO_HOSTS_PER_SCENARIO; TrainConfig's evaluation and checkpoint periods).
# The tuned heuristics are read from the registry when it runs (agents.policies.TUNED_NAMES).
# About 1 h 10 min on 2 cores (experiments/results/headline-v2/README.md, "Wall time"); it
# resumes like headline-v1: rerun it until it prints the table.
HEADLINE_ALGOS ?= dagger-esx-ppo dagger-oracle-ppo
HEADLINE_SEEDS ?= 3
HEADLINE_TIMESTEPS ?= 200000
HEADLINE_JOBS ?= 0
HEADLINE_BASELINES = $(shell $(VPY) -c 'from agents.policies import HEURISTIC_NAMES as H, \
	TUNED_NAMES as T; print(" ".join([*H, *T, "oracle"]))')
HEADLINE_N_ENVS = $(shell $(VPY) -c 'from envs.scenarios import resolve_scenarios as r; \
	from experiments.agent_v2 import PPO_HOSTS_PER_SCENARIO as k; print(k * len(r("split:train@v2")))')
HEADLINE_V2_ARGS ?= --name headline-v2 --results-dir experiments/results \
	--algos $(HEADLINE_ALGOS) --seeds $(HEADLINE_SEEDS) --total-timesteps $(HEADLINE_TIMESTEPS) \
	--train-scenarios split:train@v2 --test-scenarios split:test@v2 --eval-seeds 5 \
	--baselines $(HEADLINE_BASELINES) --obs-version 2 --decision-period-s 1.0 --hold-deadband 0.0 \
	--imitate-iterations 3 --imitate-episodes 4 --n-envs $(HEADLINE_N_ENVS) \
	--eval-freq 20000 --eval-episodes 4 --checkpoint-freq 20000 --jobs $(HEADLINE_JOBS)
headline: $(STAMP)
	$(VENV)/bin/reclaim compare $(HEADLINE_V2_ARGS)

# The v1 headline (experiments/results/headline-v1/README.md): hours on 2 cores. It
# resumes: finished runs and evaluations are kept, killed trainings continue from their
# newest checkpoint, so rerun it until it prints the table.
# The committed results are named explicitly: a bare `reclaim compare` writes under ./results/.
HEADLINE_ARGS ?= --name headline-v1 --results-dir experiments/results --algos ppo,a2c --seeds 3 --total-timesteps 1000000 \
	--train-scenarios split:train --test-scenarios split:test --eval-seeds 5 --no-normalize-reward \
	--eval-freq 100000 --eval-episodes 2 --checkpoint-freq 50000 --jobs 2
headline-v1: $(STAMP)
	$(VENV)/bin/reclaim compare $(HEADLINE_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
