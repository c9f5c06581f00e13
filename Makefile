# The two set-up commands of the README. Both install the package with its dependencies first.
PYTHON ?= python
export YOLO_OFFLINE = 1

.PHONY: install demo test

install:
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install
	yolo-compress demo

test: install
	$(PYTHON) -m pytest -q
