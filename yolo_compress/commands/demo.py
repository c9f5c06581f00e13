"""`yolo-compress demo`: the whole toolkit on an embedded default, offline, in minutes on a laptop CPU.

Generates the synthetic dataset, trains a yolo26n baseline, then runs the 3-stage recipe (sparsity training,
pruning by BatchNorm gamma, fine-tuning distilled from the baseline) and INT8 quantization, and prints the
comparison of every stage against the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.commands.base import command_spec, resolve

# AdamW with an optimizer step per batch of 16 (nbs=16): on 400 images that is 4x more steps per epoch than
# Ultralytics' nominal batch of 64, which a short run needs to converge. AdamW also matters for sparsity:
# Ultralytics clips the gradient norm to 10, which shrinks SGD's steps (and the penalty with them) ~25x on this
# model, while AdamW's per-weight normalisation is unaffected (docs/sparsity.md).
ADAMW = {"optimizer": "AdamW", "lr0": 0.002, "warmup_epochs": 1, "nbs": 16}
# Stages that start from trained weights: half the rate and no warm-up (whose bias rate, warmup_bias_lr=0.1, is
# meant for SGD). One demo run at imgsz 128 each way: distilled fine-tune 0.150 vs 0.137 mAP50-95 with ADAMW.
FINETUNE = {**ADAMW, "lr0": 0.001, "warmup_epochs": 0}
DEMO_STAGES = [
    {"name": "baseline", "train": {"epochs": 10, **ADAMW}},
    {"name": "sparsity", "train": {"epochs": 1, "l1_regularization": True, "lambda_l1": 0.0, "lambda_bn": 5.0e-4,
                                   **FINETUNE, "lr0": 2.0e-4}},
    {"name": "prune", "prune": {"pruning_ratio": 0.5, "importance_metric": "bn"}},
    {"name": "distill", "train": {"epochs": 6, "distillation": True, "teacher_model": "stage:baseline",
                                  "distill_type": "yolo", **FINETUNE}},
    {"name": "int8", "quantize": {"int8": True}},
]
EASY = {"radius": (0.12, 0.3), "noise": 8.0}  # bigger shapes, less noise: a baseline worth compressing in minutes


def demo_recipe(project: Path, data: Path, imgsz: int) -> dict[str, Any]:
    return {"name": "demo", "model": "yolo26n.yaml", "data": str(data), "imgsz": imgsz, "batch": 16,
            "project": str(project), "stages": [{k: dict(v) if isinstance(v, dict) else v for k, v in s.items()}
                                                for s in DEMO_STAGES]}


def run(args: dict[str, Any]) -> Path:
    """`yolo-compress demo [project=runs/compress] [imgsz=160] [epochs=N caps every training] [n_train=400]`."""
    from yolo_compress.data.synthetic import make_dataset
    from yolo_compress.pipeline import recipe as recipes
    from yolo_compress.pipeline.compare import run_and_compare

    args = resolve("demo", args)
    project, imgsz = Path(args["project"]), args["imgsz"]
    data = make_dataset(project / "demo_data", n_train=args["n_train"], n_val=args["n_val"], imgsz=imgsz,
                        max_objects=3, **EASY)
    caps = {"epochs": args["epochs"]} if args["epochs"] is not None else {}
    run_dir, _ = run_and_compare(recipes.load_dict(demo_recipe(project, data, imgsz), caps),
                                 command_spec("pipeline")["runs"]["default"])
    print(f"\nDemo finished. Results: {run_dir / 'results.md'}  Report: {run_dir / 'report.md'}")
    return run_dir
