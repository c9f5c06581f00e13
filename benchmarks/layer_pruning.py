"""Benchmark: layer pruning vs channel pruning at the same FLOPs cut on yolo26n (synthetic data).

Arms, all from the shared trained baseline (benchmarks/common.py), each fine-tuned FT epochs with the same settings:
  layer          pruning_method=layer target_flops=LAYER_FLOPS (blocks removed by output-distortion sensitivity)
  channel@layer  uniform l1 channel pruning at the ratio whose GFLOPs are closest to the layer arm's (bisection)
  suggest        `suggest target_flops=SUGGEST_FLOPS` plan (blocks + per-group channel ratios) applied by `prune`
  channel@sugg.  uniform l1 channel pruning at the ratio whose GFLOPs match the suggest arm
Reported: params, GFLOPs, ONNX Runtime CPU latency of all ONNX files timed interleaved in one loop (median), mAP50-95.

Usage: python benchmarks/layer_pruning.py [ft=5] [layer_flops=0.8] [suggest_flops=0.5] [imgsz=160] [latency_imgsz=640]
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, baseline, finished, key_value_args, publish, synthetic_data  # noqa: E402
from ultralytics.nn.tasks import load_checkpoint  # noqa: E402

from yolo_compress import measure  # noqa: E402
from yolo_compress.pruning.channel import ChannelPruner  # noqa: E402
from yolo_compress.commands.prune import run as prune_command  # noqa: E402
from yolo_compress.commands.suggest import run as suggest_command  # noqa: E402

OUT = ROOT / "layer_pruning"


def matching_ratio(model_path: Path, kept: float, imgsz: int) -> float:
    """Uniform channel ratio whose pruned GFLOPs fraction is closest to ``kept`` (bisection on real prunes)."""
    model = load_checkpoint(model_path)[0].float()  # unfused, as `prune` loads it (load_model fuses Conv+BN)
    base = measure.gflops(model, imgsz)
    fractions: dict[float, float] = {}

    def fraction(ratio: float) -> float:
        trial = copy.deepcopy(model)
        ChannelPruner(trial, ratio, "l1", round_to=8).prune()
        fractions[ratio] = measure.gflops(trial, imgsz) / base
        return fractions[ratio]

    lo, hi = 0.0, 0.9
    for _ in range(7):
        mid = round((lo + hi) / 2, 4)
        if fraction(mid) > kept:
            lo = mid
        else:
            hi = mid
    # round_to=8 makes the curve jump (a 16-channel group keeps 16 until ratio 0.5): take the closer side
    return min(fractions, key=lambda r: abs(fractions[r] - kept))


def prune(model: Path, name: str, imgsz: int, **kw) -> Path:
    return prune_command({"model": str(model), "imgsz": imgsz, "project": str(OUT), "name": name,
                          "exist_ok": True, **kw})


def train(model: Path, name: str, data: Path, epochs: int, imgsz: int) -> Path:
    """Fine-tune ``model``; every arm uses the same settings. Cached: a finished run is reused."""
    from yolo_compress import YOLO

    name = f"{name}_ft{epochs}"
    if not finished(OUT / name):
        YOLO(str(model)).train(data=str(data), epochs=epochs, imgsz=imgsz, batch=32, project=str(OUT), name=name,
                               exist_ok=True, seed=0, plots=False, workers=2)
    return OUT / name / "weights" / "best.pt"


def main(ft: int = 5, layer_flops: float = 0.8, suggest_flops: float = 0.5, imgsz: int = 160,
         latency_imgsz: int = 640) -> str:
    from ultralytics import YOLO

    data = synthetic_data(imgsz=imgsz)
    base = baseline("yolo26n.yaml", imgsz=imgsz, epochs=40, data=data)
    OUT.mkdir(parents=True, exist_ok=True)
    base_flops = measure.gflops(load_checkpoint(base)[0], imgsz)
    layer = prune(base, "prune_layer", imgsz, pruning_method="layer", target_flops=layer_flops, data=str(data))
    plan = suggest_command({"model": str(base), "data": str(data), "imgsz": imgsz, "target_flops": suggest_flops,
                            "project": str(OUT), "name": "suggest", "exist_ok": True})
    sugg = prune(base, "prune_suggest", imgsz, plan=str(plan))
    pruned = {"layer": layer, "suggest (layer+channel)": sugg}
    for label, pt in list(pruned.items()):
        kept = measure.gflops(load_checkpoint(pt)[0], imgsz) / base_flops
        ratio = matching_ratio(base, kept, imgsz)
        pruned[f"channel l1 {ratio} (= {label} FLOPs)"] = prune(base, f"prune_channel_{ratio}", imgsz,
                                                                   pruning_ratio=ratio)
    arms = {"unpruned": train(base, "ft_unpruned", data, ft, imgsz)}
    arms |= {label: train(pt, "ft_" + pt.parent.parent.name, data, ft, imgsz) for label, pt in pruned.items()}
    onnx = {}
    for label, pt in arms.items():
        dst = OUT / "onnx" / f"{pt.parent.parent.name}.pt"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(pt, dst)
        onnx[label] = Path(YOLO(str(dst)).export(format="onnx", imgsz=latency_imgsz, verbose=False))
    lat = measure.latency(list(onnx.values()), imgsz=latency_imgsz, runs=200, warmup=20)
    rows, ref = [], None
    for (label, pt), ms in zip(arms.items(), lat):
        model = measure.load_model(pt)
        r = {"label": label, "params": measure.count_params(model), "gflops": measure.gflops(model, latency_imgsz),
             "layers": sum(1 for _ in model.modules()), "ms": ms,
             "map": measure.evaluate(pt, str(data), imgsz)["map50_95"]}
        ref = ref or r
        rows.append(r)
    lines = [
        f"| model (fine-tuned {ft} epochs) | params | GFLOPs@{latency_imgsz} | modules | ORT CPU ms@{latency_imgsz} "
        "| speed-up | mAP50-95 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['params']:,} ({r['params'] / ref['params']:.0%}) | {r['gflops']:.2f} "
                     f"({r['gflops'] / ref['gflops']:.0%}) | {r['layers']} | {r['ms']:.2f} | "
                     f"{ref['ms'] / r['ms']:.2f}x | {r['map']:.4f} ({100 * (r['map'] - ref['map']):+.2f}) |")
    lines.append(f"\nSettings: ft={ft} layer_flops={layer_flops} suggest_flops={suggest_flops} imgsz={imgsz} "
                 f"latency_imgsz={latency_imgsz}; baseline {base}.")
    return publish(lines, OUT / "results.md")


if __name__ == "__main__":
    main(**key_value_args(sys.argv[1:]))
