# The two set-up commands of the README:
#   make demo   installs the project, extracts the sample T1w head and runs the pipeline on it
#   make test   installs everything (Python deps, Docker engine, Prometheus) and runs all tests
PY ?= python3
PYTEST_ARGS ?=

.PHONY: install sample demo system-deps test bench

install:
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'

sample: install
	$(PY) -m pipeline.sample_data

demo: sample
	neuro-preprocess process data/input/sub-001/anat/sub-001_T1w.nii.gz -o out --telemetry-summary

system-deps:
	bash scripts/install_system_deps.sh
	bash scripts/start_dockerd.sh

test: sample system-deps
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: sample system-deps
	$(PY) benchmarks/run_all.py
