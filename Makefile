# layerlab: two commands for a fresh machine
#   make demo   - end-to-end demo on the embedded local registry
#   make test   - every test (unit, interop with skopeo/docker-registry, workshop notebooks under nbval)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test venv samples bench clean notebooks

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

samples: venv
	@test -f sample_images/expected.json || $(PY) -m layerlab.samples --out sample_images

demo: venv samples
	$(PY) -m layerlab demo

test: venv
	$(PY) -m pytest -q --nbval tests layerlab/workshop

notebooks: venv
	$(PY) -m pip install -q -e '.[notebook]'
	$(VENV)/bin/jupyter lab layerlab/workshop/

bench: venv
	@echo "benchmarks: see benchmarks/README.md (each is run on its own, e.g. $(PY) benchmarks/bench_push.py)"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
