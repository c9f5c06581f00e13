"""Benchmark of structural channel pruning on yolo26n (synthetic data): what it costs in mAP, what it buys in speed.

Pipeline, all from the shared trained baseline (benchmarks/common.py):
  unpruned   baseline fine-tuned FT epochs
  l1         baseline pruned with importance_metric=l1, fine-tuned FT epochs
  bn+slim    baseline trained SP epochs with a BN-gamma L1 penalty (network slimming), pruned with
             importance_metric=bn, fine-tuned FT epochs
Reported: params, GFLOPs, ONNX size, ONNX Runtime CPU latency (all ONNX files timed interleaved in one loop, median)
and mAP50-95 on the synthetic val split, plus the pruning time.

Usage: python benchmarks/pruning.py [ratio=0.5] [ft=10] [sp=10] [lambda_bn=1e-3] [imgsz=160] [latency_imgsz=640]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, baseline, synthetic_data  # noqa: E402
from yolo_compress import measure  # noqa: E402
from yolo_compress.pruning.channel import bn_channel_sparsity  # noqa: E402
from yolo_compress.pruning.command import prune_command  # noqa: E402

OUT = ROOT / "pruning"


def slimming_technique(lam: float):
    """BN-gamma L1 subgradient (network slimming), added before each optimizer step of the sparsity stage.

    Kept in the benchmark so it does not depend on the sparsity technique's branch; scaled like the detection loss
    (summed over the images of the step, times the AMP scale).
    """
    import torch
    from torch import nn
    from ultralytics.utils.torch_utils import unwrap_model

    from yolo_compress.trainer import Technique

    class Slimming(Technique):
        @classmethod
        def enabled(cls, args) -> bool:
            return True

        def before_optimizer_step(self, grad_scale: float) -> None:
            images = self.trainer.batch_size * self.trainer.accumulate
            for m in unwrap_model(self.trainer.model).modules():
                if isinstance(m, nn.BatchNorm2d) and m.weight.grad is not None:
                    m.weight.grad.add_(torch.sign(m.weight.detach()) * lam * grad_scale * images)

    return Slimming


def train(model: Path, name: str, data: Path, epochs: int, imgsz: int, technique=None) -> Path:
    """Fine-tune ``model``; every arm uses the same settings. Cached: an existing best.pt is reused."""
    from yolo_compress import YOLO
    from yolo_compress.trainer import TECHNIQUES

    best = OUT / name / "weights" / "best.pt"
    if best.exists():
        return best
    if technique:
        TECHNIQUES.append(technique)
    try:
        YOLO(str(model)).train(data=str(data), epochs=epochs, imgsz=imgsz, batch=32, project=str(OUT), name=name,
                               exist_ok=True, seed=0, plots=False, workers=2)
    finally:
        if technique:
            TECHNIQUES.remove(technique)
    return best


def prune(model: Path, name: str, ratio: float, metric: str, imgsz: int) -> tuple[Path, float]:
    start = time.perf_counter()
    out = prune_command({"model": str(model), "pruning_ratio": ratio, "importance_metric": metric, "imgsz": imgsz,
                         "project": str(OUT), "name": name, "exist_ok": True})
    return out, time.perf_counter() - start


def main(ratio: float = 0.5, ft: int = 10, sp: int = 10, lambda_bn: float = 1e-3, imgsz: int = 160,
         latency_imgsz: int = 640) -> str:
    from ultralytics import YOLO

    data = synthetic_data(imgsz=imgsz)
    base = baseline("yolo26n.yaml", imgsz=imgsz, epochs=40, data=data)
    OUT.mkdir(parents=True, exist_ok=True)
    slim = train(base, "slim", data, sp, imgsz, slimming_technique(lambda_bn))
    l1_pruned, l1_time = prune(base, "prune_l1", ratio, "l1", imgsz)
    bn_pruned, bn_time = prune(slim, "prune_bn", ratio, "bn", imgsz)
    arms = {
        "unpruned (fine-tuned)": train(base, "ft_unpruned", data, ft, imgsz),
        f"l1 {ratio} (fine-tuned)": train(l1_pruned, "ft_l1", data, ft, imgsz),
        f"bn+slimming {ratio} (fine-tuned)": train(bn_pruned, "ft_bn", data, ft, imgsz),
    }
    onnx = {}
    for label, pt in arms.items():
        copy = OUT / "onnx" / f"{pt.parent.parent.name}.pt"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(pt, copy)
        onnx[label] = Path(YOLO(str(copy)).export(format="onnx", imgsz=latency_imgsz, verbose=False))
    lat = measure.latency(list(onnx.values()), imgsz=latency_imgsz, runs=200, warmup=20)
    rows, ref = [], None
    for (label, pt), ms in zip(arms.items(), lat):
        model = measure.load_model(pt)
        r = {"label": label, "params": measure.count_params(model), "gflops": measure.gflops(model, latency_imgsz),
             "onnx_mb": measure.file_size_mb(onnx[label]), "ms": ms,
             "map": measure.evaluate(pt, str(data), imgsz)["map50_95"]}
        ref = ref or r
        rows.append(r)
    lines = [
        f"| model | params | GFLOPs@{latency_imgsz} | ONNX MB | ORT CPU ms@{latency_imgsz} | speed-up | mAP50-95 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['params']:,} ({r['params'] / ref['params']:.0%}) | {r['gflops']:.2f} "
                     f"({r['gflops'] / ref['gflops']:.0%}) | {r['onnx_mb']:.2f} | {r['ms']:.2f} | "
                     f"{ref['ms'] / r['ms']:.2f}x | {r['map']:.4f} ({100 * (r['map'] - ref['map']):+.2f}) |")
    slim_sparsity = bn_channel_sparsity(measure.load_model(slim))
    base_sparsity = bn_channel_sparsity(measure.load_model(base))
    lines += [
        "",
        f"Prune time: l1 {l1_time:.1f} s, bn {bn_time:.1f} s (whole `prune` command: load, prune, save, plan).",
        f"BN channels with |gamma| < 0.01: baseline {base_sparsity:.1%}, after {sp} slimming epochs {slim_sparsity:.1%}.",
        f"Settings: ratio={ratio} ft={ft} sp={sp} lambda_bn={lambda_bn} imgsz={imgsz} latency_imgsz={latency_imgsz}; "
        f"baseline {base}.",
    ]
    text = "\n".join(lines)
    (OUT / "results.md").write_text(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    from ultralytics.cfg import smart_value

    main(**{k: smart_value(v) for k, v in (a.split("=", 1) for a in sys.argv[1:])})
