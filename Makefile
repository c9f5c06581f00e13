# The two set-up commands of the README. Both install the package with its dependencies first.
PYTHON ?= python
export YOLO_OFFLINE = 1

.PHONY: install demo test

install:
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install
	yolo-compress data synth out=datasets/synthetic
	yolo-compress train model=yolo26n.yaml data=datasets/synthetic/data.yaml epochs=3 imgsz=160 batch=32 name=demo exist_ok=True
	yolo-compress analyze runs/detect/demo/weights/best.pt imgsz=160 plot=runs/detect/demo/bn_gamma_hist.png

test: install
	$(PYTHON) -m pytest -q
