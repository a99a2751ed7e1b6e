# twin: `make demo` and `make test` do all set-up on a fresh machine (a venv in .venv, an editable install).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export TWIN_DATA ?= $(abspath ../shared/data)

.PHONY: setup build test test-fast demo lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Re-install when the packaging or the C++ sources change.
$(STAMP): $(PY) pyproject.toml setup.py CMakeLists.txt $(wildcard core_cpp/*/*.cpp core_cpp/*/*.hpp core_cpp/include/twin/*.hpp)
	$(PIP) install --upgrade "setuptools>=68" wheel pybind11 cmake ninja
	$(PIP) install --no-build-isolation -e ".[dev,sweep,viewer]"
	touch $(STAMP)

setup: $(STAMP)

build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

test: setup
	# the web viewer test drives a headless Chromium (playwright's own browser download is not used)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest -q -n 2 tests

demo: setup
	$(VENV)/bin/twin demo --out demo-out

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror core_cpp/*/*.cpp core_cpp/*/*.hpp core_cpp/include/twin/*.hpp

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/clang-format -i core_cpp/*/*.cpp core_cpp/*/*.hpp core_cpp/include/twin/*.hpp

bench: setup
	# open3d (the Embree peer) needs libusb at import time
	@ldconfig -p | grep -q libusb-1.0 || (apt-get update -qq && apt-get install -y -qq libusb-1.0-0)
	$(PIP) install -q --no-build-isolation -e ".[dev,sweep,viewer,bench]"
	$(PY) -m bench

clean:
	rm -rf build twin/_core*.so *.egg-info
