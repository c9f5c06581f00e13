"""Train the detectors that benchmarks/quantization.py quantizes (synthetic shapes, offline).

Usage: YOLO_OFFLINE=1 python benchmarks/train_quantize_models.py [--epochs 30] [--imgsz 160] [--out runs/bench_quantize]
Writes <out>/data/data.yaml and <out>/<model>/weights/best.pt for yolo26n and yolo11n.

With --finetune IMGSZ, each <out>/<model>/weights/best.pt is fine-tuned at IMGSZ into <out>/<model>_<IMGSZ>/ with
AdamW, lr0 1e-4, nbs 16 and no warm-up; benchmarks/quantization.py uses <model>_<imgsz> when it exists. Measured on
YOLO26n: lr0 0.002 (1 warm-up epoch) or 0.001 dropped its mAP50-95 at 320 from 0.25 to ~0.02 in the first epoch;
1e-4 raised it to 0.33.
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
    parser.add_argument("--finetune", type=int, default=0, help="fine-tune the trained models at this imgsz")
    opt = parser.parse_args()
    out = Path(opt.out).resolve()
    data = out / "data" / "data.yaml"
    if not data.exists():
        data = make_dataset(out / "data", n_train=800, n_val=200, imgsz=320, max_objects=4, seed=0)
    for name in opt.models:
        if opt.finetune:
            YOLO(str(out / name / "weights" / "best.pt")).train(
                data=str(data), epochs=opt.epochs, imgsz=opt.finetune, batch=32, device="cpu", workers=2,
                optimizer="AdamW", lr0=0.0001, nbs=16, warmup_epochs=0,
                project=str(out), name=f"{name}_{opt.finetune}", exist_ok=True, plots=False, verbose=False,
            )
            continue
        YOLO(f"{name}.yaml").train(
            data=str(data), epochs=opt.epochs, imgsz=opt.imgsz, batch=32, device="cpu", workers=2,
            project=str(out), name=name, exist_ok=True, plots=False, verbose=False,
        )


if __name__ == "__main__":
    main()
