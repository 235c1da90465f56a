# The two commands of the README: `make demo` (the main job) and `make test` (every test, as CI runs it).
PYTHON ?= python3

.PHONY: setup demo test lint gpu-setup gpu-test

# torch==2.13.0 is pinned only when torch is missing: a bare `torch` requirement would pull a CUDA build.
setup:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[dev,notebooks]'

demo: setup
	$(PYTHON) -m moegate.properties verify

lint:
	$(PYTHON) -m ruff check .

test: setup lint
	$(PYTHON) -m pytest

# On a GPU machine without a package registry: install without dependencies, run the GPU suite.
gpu-setup:
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .

gpu-test: gpu-setup
	$(PYTHON) -m pytest -m gpu
