# The two set-up commands of the README. Both install the package with its dependencies first.
PYTHON ?= python
export YOLO_OFFLINE = 1

.PHONY: install demo test test-fast

install:
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install
	yolo-compress demo

# A pytest-xdist worker per core (tests/conftest.py gives each worker its share of torch threads). The fast lane
# below runs in one process: its tests are short, and starting a worker costs more than it saves there.
test: install
	$(PYTHON) -m pytest -q -n auto

# The inner loop: every test that needs no trained model (pytest -m "not slow"; tests/conftest.py marks the rest).
test-fast: install
	$(PYTHON) -m pytest -q -m "not slow"
