"""Train the detectors that benchmarks/quantization.py quantizes (synthetic shapes, offline).

Usage: YOLO_OFFLINE=1 python benchmarks/train_quantize_models.py [--epochs 30] [--imgsz 160] [--out runs/bench_quantize]
Writes <out>/data/data.yaml and <out>/<model>/weights/best.pt for yolo26n and yolo11n.
With --finetune N, instead fine-tunes <model>/weights/best.pt at --imgsz for N epochs into <out>/<model>_<imgsz>/,
so that a model is benchmarked at the resolution it was trained for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ultralytics import YOLO

from yolo_compress.data.synthetic import make_dataset

MODELS = ("yolo26n", "yolo11n")


def main() -> None:
    """Make the dataset once, then train each model from its yaml."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--out", default="runs/bench_quantize")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--finetune", type=int, default=0, help="epochs of fine-tuning <model>/weights/best.pt at --imgsz")
    opt = parser.parse_args()
    out = Path(opt.out).resolve()
    data = out / "data" / "data.yaml"
    if not data.exists():
        data = make_dataset(out / "data", n_train=800, n_val=200, imgsz=320, max_objects=4, seed=0)
    for name in opt.models:
        source, run, epochs = f"{name}.yaml", name, opt.epochs
        if opt.finetune:
            source, run, epochs = str(out / name / "weights" / "best.pt"), f"{name}_{opt.imgsz}", opt.finetune
        YOLO(source).train(
            data=str(data), epochs=epochs, imgsz=opt.imgsz, batch=32, device="cpu", workers=2,
            project=str(out), name=run, exist_ok=True, plots=False, verbose=False,
        )


if __name__ == "__main__":
    main()
