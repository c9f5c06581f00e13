"""Seconds per training epoch with Ultralytics' CPU thread count (cpu_count-1) against every core, as
CompressionTrainer._use_all_cores sets it. One epoch each, same data and seed, run one after the other.

Usage: YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/training_threads.py [--imgsz 160] [--n_train 400]
"""

from __future__ import annotations

import argparse
import os
import time

from common import ROOT, synthetic_data

from yolo_compress.trainer import CompressionTrainer


def epoch_seconds(data, imgsz: int, all_cores: bool) -> float:
    """Wall time of one training epoch (validation off), with or without the trainer's all-cores setting."""
    trainer = CompressionTrainer(overrides=dict(model="yolo26n.yaml", data=str(data), epochs=1, imgsz=imgsz, batch=16,
                                                val=False, plots=False, project=str(ROOT / "threads"),
                                                name=f"all_cores_{all_cores}", exist_ok=True, verbose=False))
    if not all_cores:
        trainer._use_all_cores = lambda: None
    span = {}
    trainer.add_callback("on_train_epoch_start", lambda t: span.setdefault("start", time.perf_counter()))
    trainer.add_callback("on_train_epoch_end", lambda t: span.setdefault("end", time.perf_counter()))
    trainer.train()
    return span["end"] - span["start"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--n_train", type=int, default=400)
    opt = parser.parse_args()
    data = synthetic_data(n_train=opt.n_train, n_val=100, imgsz=opt.imgsz)
    stock, ours = (epoch_seconds(data, opt.imgsz, all_cores) for all_cores in (False, True))
    print(f"{os.cpu_count()} cores, yolo26n, imgsz {opt.imgsz}, {opt.n_train} images, batch 16: "
          f"{stock:.1f} s/epoch with Ultralytics' threads, {ours:.1f} s with every core ({stock / ours:.2f}x)")


if __name__ == "__main__":
    main()
