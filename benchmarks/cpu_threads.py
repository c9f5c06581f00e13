"""yolo-compress' CPU work with Ultralytics' thread count (cpu_count-1) against every core (device.use_all_cores):
seconds per training epoch, of the prune command's BatchNorm re-estimation, and of suggest's sensitivity analysis.
Same data and seed each way, run one after the other.

Usage: YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/cpu_threads.py [--imgsz 160] [--n_train 400]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import ROOT, synthetic_data
from ultralytics.utils import NUM_THREADS

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


def prune_seconds(data, imgsz: int, threads: int) -> dict[str, float]:
    """Wall time of the prune command's two heavy parts on a yolo26n (the weights do not change the cost): the
    BatchNorm re-estimation on 8 train batches of 16 (with data=), and suggest's sensitivity analysis on 8 images."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_compress.pruning.recalibrate import recalibrate_bn, train_batches
    from yolo_compress.pruning.sensitivity import calibration_images
    from yolo_compress.pruning.suggest import sensitivities

    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=5, verbose=False)
    batches, images = train_batches(model, str(data), imgsz, 16, 8), calibration_images(str(data), imgsz)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    recalibrate_bn(model, batches)
    mid = time.perf_counter()
    sensitivities(model.eval(), images, imgsz)
    return {"bn": mid - start, "sensitivity": time.perf_counter() - mid}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--n_train", type=int, default=400)
    opt = parser.parse_args()
    data = synthetic_data(n_train=opt.n_train, n_val=100, imgsz=opt.imgsz)
    every = min(8, os.cpu_count() or 1)
    stock, ours = (epoch_seconds(data, opt.imgsz, all_cores) for all_cores in (False, True))
    p_stock, p_ours = (prune_seconds(data, opt.imgsz, t) for t in (NUM_THREADS, every))
    print(f"{os.cpu_count()} cores, yolo26n, imgsz {opt.imgsz}; {NUM_THREADS} thread(s) (Ultralytics) vs {every}:\n"
          f"  training, {opt.n_train} images, batch 16: {stock:.1f} vs {ours:.1f} s/epoch ({stock / ours:.2f}x)")
    for key, what in (("bn", "prune data=: BatchNorm re-estimation, 8 x 16 images"),
                      ("sensitivity", "suggest/auto: sensitivity analysis, 8 images")):
        print(f"  {what}: {p_stock[key]:.1f} vs {p_ours[key]:.1f} s ({p_stock[key] / p_ours[key]:.2f}x)")

if __name__ == "__main__":
    main()
