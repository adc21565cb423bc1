# The two set-up commands of the README, plus helpers. Each target installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: demo test install install-dev data lint clean-demo

demo: install data  ## the demo pipeline on its embedded default (CPU, real Fashion-MNIST)
	$(PY) -m slurm run configs/pipelines/demo.yaml

test: install-dev data  ## the whole test suite (what .ci/run calls)
	$(PY) -m pytest -q

install:
	bash scripts/install.sh core

install-dev:
	bash scripts/install.sh dev

data:
	bash scripts/get_data.sh

lint: install-dev
	$(VENV)/bin/ruff check .

clean-demo:
	rm -rf runs/demo
