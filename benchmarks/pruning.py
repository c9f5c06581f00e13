"""Benchmark of structural channel pruning on yolo26n (synthetic data): what it costs in mAP, what it buys in speed.

Pipeline. Stage 0 is the shared 40-epoch baseline (benchmarks/common.py), fine-tuned 15 epochs twice by the sparsity
benchmark (benchmarks/sparsity.py, AdamW, cached under $YOLO_COMPRESS_BENCH_DIR/sparsity): `plain` without and
`sparse` with the BatchNorm-gamma L1 penalty (`l1_regularization=True lambda_l1=0 lambda_bn=5e-4`). AdamW brings
the baseline much closer to convergence than Ultralytics' auto optimizer does, so the comparison measures pruning,
not unfinished training. Every row then gets the same FT fine-tuning epochs with the same settings:
  unpruned   `plain`, not pruned
  l1         `plain` pruned with importance_metric=l1
  bn         `sparse` pruned with importance_metric=bn (channels the penalty switched off go first)
  bn + KD    as bn, fine-tuned with distillation from `plain` (distill_type=yolo)
so every row has had the same number of training epochs (40 + 15 + FT). The fine-tunes run as parallel processes,
so the load of a shared machine falls on all alike.
Reported: params, GFLOPs, ONNX size, ONNX Runtime CPU latency (all ONNX files timed interleaved in one loop, median),
mAP50-95 right after pruning and after fine-tuning on the synthetic val split, and the pruning time.

Usage: python benchmarks/pruning.py [ratio=0.5] [preserve_shortcuts=False] [global_pruning=False] [ft=5]
       [kd=True] [imgsz=160]
       [latency_imgsz=640]
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    ROOT,
    baseline,
    finished,
    key_value_args,
    publish,
    side_by_side_env,
    synthetic_data,
)
from yolo_compress import measure  # noqa: E402
from yolo_compress.analysis import bn_stats  # noqa: E402
from yolo_compress.commands.prune import run as prune_command  # noqa: E402

OUT = ROOT / "pruning"
SPARSITY = ROOT / "sparsity"  # benchmarks/sparsity.py's default project
# Same optimizer family as the sparsity stage; nbs=16 gives 50 optimizer steps per epoch on 800 images.
FINE_TUNE = {"optimizer": "AdamW", "lr0": 0.002, "warmup_epochs": 1, "batch": 16, "nbs": 16}


def sparsity_stage() -> tuple[Path, Path]:
    """best.pt of the sparsity benchmark's `plain` and `sparse` runs, produced by it with its defaults if missing."""
    plain, sparse = (SPARSITY / name / "weights" / "best.pt" for name in ("plain", "sparse"))
    if not (finished(plain.parent.parent) and finished(sparse.parent.parent)):
        subprocess.run([sys.executable, str(Path(__file__).with_name("sparsity.py"))], check=True)
    return plain, sparse


def fine_tune(model: Path, name: str, data: Path, epochs: int, imgsz: int, extra: dict, env: dict) -> None:
    """Fine-tune ``model`` into OUT/name (run in its own process, with its share of the cores in ``env``)."""
    from yolo_compress import YOLO

    os.environ.update(env)

    YOLO(str(model)).train(data=str(data), epochs=epochs, imgsz=imgsz, project=str(OUT), name=name, exist_ok=True,
                           seed=0, plots=False, workers=2, **FINE_TUNE, **extra)


def fine_tune_all(jobs: dict[str, tuple[Path, dict]], data: Path, epochs: int, imgsz: int) -> dict[str, Path]:
    """best.pt of every job, training the missing or unfinished ones side by side (one process each)."""
    ctx = multiprocessing.get_context("spawn")
    todo = {name: job for name, job in jobs.items() if not finished(OUT / name)}
    env = side_by_side_env(len(todo))
    procs = [ctx.Process(target=fine_tune, args=(model, name, data, epochs, imgsz, extra, env))
             for name, (model, extra) in todo.items()]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        sys.exit("a fine-tuning run failed")
    return {name: OUT / name / "weights" / "best.pt" for name in jobs}


def prune(model: Path, name: str, ratio: float, metric: str, shortcuts: bool, imgsz: int, data: Path,
          global_pruning: bool = False, project: Path = OUT) -> tuple[Path, float, float]:
    """The `prune` command as users run it, with data= (BatchNorm statistics re-estimated on train batches).

    Returns the pruned checkpoint, the seconds of the pruning step (graph, importance, surgery; recorded in the
    checkpoint) and of the whole command (also loading, train batches, BN re-estimation, saving, plan, and the
    before/after validations that data= adds)."""
    from yolo_compress.checkpoints import load_dict

    start = time.perf_counter()
    pruned = prune_command({"model": str(model), "pruning_ratio": ratio, "importance_metric": metric, "imgsz": imgsz,
                            "preserve_shortcuts": shortcuts, "global_pruning": global_pruning, "data": str(data),
                            "project": str(project), "name": name, "exist_ok": True})
    command = time.perf_counter() - start
    return pruned, load_dict(pruned)["yolo_compress"]["pruning"]["seconds"], command


def main(ratio: float = 0.5, preserve_shortcuts: bool = False, global_pruning: bool = False, ft: int = 5,
         kd: bool = True, imgsz: int = 160, latency_imgsz: int = 640) -> str:
    from ultralytics import YOLO

    data = synthetic_data(imgsz=imgsz)
    base = baseline("yolo26n.yaml", imgsz=imgsz, epochs=40, data=data)
    plain, sparse = sparsity_stage()
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"{ratio}{'_sc' if preserve_shortcuts else ''}{'_global' if global_pruning else ''}"
    l1_pruned, *l1_time = prune(plain, f"prune_l1_{tag}", ratio, "l1", preserve_shortcuts, imgsz, data,
                                global_pruning)
    bn_pruned, *bn_time = prune(sparse, f"prune_bn_{tag}", ratio, "bn", preserve_shortcuts, imgsz, data, global_pruning)
    shortcuts = (", shortcuts kept" if preserve_shortcuts else "") + (", global" if global_pruning else "")
    jobs = {
        ("unpruned", f"ft{ft}_unpruned"): (plain, plain, {}),
        (f"l1 {ratio}{shortcuts}", f"ft{ft}_l1_{tag}"): (l1_pruned, l1_pruned, {}),
        (f"bn {ratio}{shortcuts}, after sparsity", f"ft{ft}_bn_{tag}"): (bn_pruned, bn_pruned, {}),
    }
    if kd:
        jobs[(f"bn {ratio}{shortcuts}, after sparsity, KD", f"ft{ft}_bnkd_{tag}")] = (
            bn_pruned, bn_pruned, {"distillation": True, "teacher_model": str(plain), "distill_type": "yolo"})
    trained = sum(not finished(OUT / name) for _, name in jobs)  # finished runs are reused, not trained again
    start = time.perf_counter()
    tuned = fine_tune_all({name: (model, extra) for (_, name), (model, _, extra) in jobs.items()}, data, ft, imgsz)
    ft_time = time.perf_counter() - start
    arms = {label: (before, tuned[name]) for (label, name), (_, before, _) in jobs.items()}
    onnx = {}
    for label, (_, pt) in arms.items():
        copy = OUT / "onnx" / f"{pt.parent.parent.name}.pt"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(pt, copy)
        onnx[label] = Path(YOLO(str(copy)).export(format="onnx", imgsz=latency_imgsz, verbose=False))
    lat = measure.latency(list(onnx.values()), imgsz=latency_imgsz, runs=200, warmup=20)
    rows, ref = [], None
    for (label, (before, pt)), ms in zip(arms.items(), lat):
        model = measure.load_model(pt)
        r = {"label": label, "params": measure.count_params(model), "gflops": measure.gflops(model, latency_imgsz),
             "onnx_mb": measure.file_size_mb(onnx[label]), "ms": ms,
             "before": measure.evaluate(before, str(data), imgsz)["map50_95"],
             "map": measure.evaluate(pt, str(data), imgsz)["map50_95"]}
        ref = ref or r
        rows.append(r)
    lines = [
        f"| model | params | GFLOPs@{latency_imgsz} | ONNX MB | ORT CPU ms@{latency_imgsz} | speed-up "
        f"| mAP50-95 before fine-tuning | mAP50-95 after {ft} epochs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['params']:,} ({r['params'] / ref['params']:.0%}) | {r['gflops']:.2f} "
                     f"({r['gflops'] / ref['gflops']:.0%}) | {r['onnx_mb']:.2f} | {r['ms']:.2f} | "
                     f"{ref['ms'] / r['ms']:.2f}x | {r['before']:.4f} | "
                     f"{r['map']:.4f} ({100 * (r['map'] - ref['map']):+.2f}) |")
    plain_sparsity = bn_stats(measure.load_model(plain))["bn_sparsity"]
    sparse_sparsity = bn_stats(measure.load_model(sparse))["bn_sparsity"]
    lines += [
        "",
        f"Prune time, pruning step (whole `prune` command with data=: load, prune, BN re-estimation, save, plan, "
        f"mAP before/after): l1 {l1_time[0]:.1f} s ({l1_time[1]:.1f} s), bn {bn_time[0]:.1f} s ({bn_time[1]:.1f} s). "
        f"Fine-tuning wall time ({trained} runs side by side, {len(jobs) - trained} reused): {ft_time:.0f} s.",
        f"BN channels with |gamma| < 0.01: after the 15 sparsity-stage epochs without the penalty "
        f"{plain_sparsity:.1%}, with it {sparse_sparsity:.1%}.",
        f"Settings: ratio={ratio} preserve_shortcuts={preserve_shortcuts} global_pruning={global_pruning} ft={ft} "
        f"kd={kd} imgsz={imgsz} "
        f"latency_imgsz={latency_imgsz}; fine-tuning {FINE_TUNE}; baseline {base}.",
    ]
    return publish(lines, OUT / f"results_{tag}_ft{ft}.md")


if __name__ == "__main__":
    main(**key_value_args(sys.argv[1:]))
