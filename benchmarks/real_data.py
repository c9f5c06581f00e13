"""Pruning on real photographs: every arm from one baseline, with one budget of extra epochs (issue #17).

Stage `baseline` trains the model from scratch on the given data with stock Ultralytics settings (optimizer auto,
batch 16, seed 0) and caches it under $YOLO_COMPRESS_BENCH_DIR/real (outside the repo); a finished run is reused.
Its results.csv is the val curve that shows whether the baseline converged.

Usage: python benchmarks/real_data.py data=PATH/data.yaml [model=yolo26n.yaml] [imgsz=320] [base_epochs=100]
       [stage=baseline]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, finished, key_value_args  # noqa: E402

OUT = ROOT / "real"
STOCK = {"batch": 16, "workers": 2, "seed": 0, "plots": False}  # the anchor script's fine-tuning settings


def dataset_name(data: Path) -> str:
    """A short name for cache folders: the folder that holds data.yaml."""
    return Path(data).resolve().parent.name


def baseline(data: Path, model: str, imgsz: int, epochs: int) -> Path:
    """best.pt of ``model`` trained from scratch on ``data``; trained on first use, then reused."""
    from yolo_compress import YOLO

    name = f"base_{dataset_name(data)}_{Path(model).stem}_{imgsz}_{epochs}e"
    if not finished(OUT / name):
        YOLO(model).train(data=str(data), epochs=epochs, imgsz=imgsz, project=str(OUT), name=name, exist_ok=True,
                          **STOCK)
    return OUT / name / "weights" / "best.pt"


def main(data: str, model: str = "yolo26n.yaml", imgsz: int = 320, base_epochs: int = 100,
         stage: str = "baseline") -> None:
    base = baseline(Path(data), model, imgsz, base_epochs)
    print(f"baseline: {base}")


if __name__ == "__main__":
    main(**key_value_args(sys.argv[1:]))
