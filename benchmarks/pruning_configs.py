"""Which pruning configuration loses least before any fine-tuning: a sweep over ratio, per-group vs global ranking and
shortcut-aware vs uniform ratios, on the pruning benchmark's models (benchmarks/pruning.py).

Each configuration runs the `prune` command as users run it (with data=, so BatchNorm statistics are re-estimated) on
the sparsity stage's `plain` model (importance l1) and `sparse` model (importance bn, after the BN-gamma penalty), then
validates the pruned model on the synthetic val split. GFLOPs at 640 as in benchmarks/pruning.py. Fine-tuning
recovers from what is lost here, so this table says which configuration is worth fine-tuning.

Usage: YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/pruning_configs.py [ratios=0.5,0.6] [metrics=l1,bn]
       [rankings=group,global] [shortcuts=True,False] [imgsz=160]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, key_value_args, publish, synthetic_data  # noqa: E402
from benchmarks.pruning import prune, sparsity_stage  # noqa: E402
from yolo_compress import measure  # noqa: E402

OUT = ROOT / "pruning_configs"


def row(model: Path, metric: str, ratio: float, global_pruning: bool, shortcuts: bool, imgsz: int, data: Path) -> str:
    """One configuration's table row: params and GFLOPs kept, mAP50-95 right after pruning, pruning-step time."""
    name = f"{metric}_{ratio}{'_global' if global_pruning else ''}{'_sc' if shortcuts else ''}"
    pruned, seconds, _ = prune(model, name, ratio, metric, shortcuts, imgsz, data, global_pruning=global_pruning,
                               project=OUT)
    before, after = measure.load_model(model), measure.load_model(pruned)
    params = measure.count_params(after) / measure.count_params(before)
    gflops = measure.gflops(after, 640) / measure.gflops(before, 640)
    mAP = measure.evaluate(pruned, str(data), imgsz)["map50_95"]
    ranking, ratios = "global" if global_pruning else "per group", "shortcut-aware" if shortcuts else "uniform"
    return f"| {metric} | {ratio} | {ranking} | {ratios} | {params:.0%} | {gflops:.0%} | {mAP:.4f} | {seconds:.1f} |"


def _values(arg) -> list[str]:
    """A comma-separated argument as strings (Ultralytics' smart_value turns "0.6,0.7" into a tuple)."""
    return [str(v) for v in arg] if isinstance(arg, (tuple, list)) else str(arg).split(",")


def main(ratios: str | float = "0.5,0.6", metrics: str = "l1,bn", rankings: str = "group,global",
         shortcuts: str = "True,False", imgsz: int = 160) -> str:
    """Every combination of the comma-separated ratios, metrics (l1 on `plain`, bn on `sparse`), rankings and
    shortcut settings."""
    data = synthetic_data(imgsz=imgsz)
    plain, sparse = sparsity_stage()
    models = {"l1": plain, "bn": sparse}
    reference = {m: measure.evaluate(p, str(data), imgsz)["map50_95"] for m, p in (("l1", plain), ("bn", sparse))}
    lines = [f"Unpruned mAP50-95: plain {reference['l1']:.4f}, sparse {reference['bn']:.4f}", "",
             "| importance | ratio | ranking | ratios | params kept | GFLOPs kept | mAP50-95 after pruning | prune s |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for ratio, metric, ranking, keep_shortcuts in itertools.product(
            *(_values(v) for v in (ratios, metrics, rankings, shortcuts))):
        lines.append(row(models[metric], metric, float(ratio), ranking == "global", keep_shortcuts == "True", imgsz,
                         data))
        print(lines[-1], flush=True)
    return publish(lines, OUT / "results.md")


if __name__ == "__main__":
    main(**key_value_args(sys.argv[1:]))
