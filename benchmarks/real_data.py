"""Pruning on real photographs: every arm from one baseline, with one budget of extra epochs (issue #17).

Stage `baseline` trains the model from scratch on the given data with stock Ultralytics settings (optimizer auto,
batch 16, seed 0) and caches it under $YOLO_COMPRESS_BENCH_DIR/real (outside the repo); a finished run is reused, a
stopped one resumed. Its results.csv is the val curve that shows whether the baseline converged.

Then every arm starts from that baseline and spends the same `budget` of extra training epochs:
  ref    the unpruned baseline fine-tuned `budget` epochs (stock settings): the fair reference
  tp     the Torch-Pruning plain recipe, with ../shared/anchors/finetune_anchor.py's own functions (split C2f, Detect
         and attention untouched, group L2, ratio 0.5), fine-tuned by that script's stock Ultralytics trainer
  flow   the flow the docs recommend, its sparsity epochs counted inside the budget: `sparsity` epochs with the
         BatchNorm-gamma penalty, `prune` with the flow's arguments, then `budget - sparsity` fine-tuning epochs
  auto   `yolo-compress auto target_flops=0.5 max_map_drop=0.01 epochs=budget`
Reported per arm: params, GFLOPs, ORT CPU latency and speed-up (batch 1; every ONNX file timed alone in its own
process, the files alternating over rounds, median), mAP50-95 on the val split, wall time. Every checkpoint is
exported by Ultralytics' stock exporter; the baseline and the project's arms are also timed as yolo-compress exports
them (`yolo-compress quantize`'s FP32 ONNX: the CSP blocks' input convolution split in two, yolo_compress.csp), the
speed-up always against the baseline's stock export. `seeds=0,1` repeats the
ref and flow arms (the headline rows) with each seed.

Usage: python benchmarks/real_data.py data=PATH/data.yaml [model=yolo26n.yaml] [imgsz=320] [base_epochs=100]
       [budget=15] [seeds=0] [arms=ref,tp,flow,auto] [stage=all|baseline] [sparsity=5] [lambda_bn=5e-4]
       [ratio=0.5] [target_flops=0] [importance_metric=l2] [global_pruning=False] [prune_head=False] [reconstruct=False]
       [head_ratio=None] [round_to=16]
       [anchor=../shared/anchors/finetune_anchor.py]
       [kd_alpha=0] [kd_temperature=1] [kd_type=response] [teacher=base|ref] [lr0=0] [nbs=0] [batch=0]
       [warmup_epochs=-1] [close_mosaic=-1] [ema_tau=0] [then_ratio=0] [then_at=3]
       [ref_nbs=0] [ref_close_mosaic=-1] [ref_ema_tau=0] [flows="sparsity=5;sparsity=0 kd_alpha=0.2"]
       [refs="seeds=0,1;ref_nbs=16 seeds=0"] [auto_nbs=0] [measure=True]
       (measure=False trains the arms only, e.g. several side by side with YOLO_COMPRESS_THREADS=1)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, finished, key_value_args, publish  # noqa: E402
from yolo_compress.checkpoints import SAFE_ENV  # noqa: E402
from yolo_compress.pruning.channel import ROUND_TO  # noqa: E402

OUT = ROOT / "real"
STOCK = {"batch": 16, "workers": 2, "plots": False}  # the anchor script's fine-tuning settings (optimizer auto)
ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "finetune_anchor.py"
CLI = [sys.executable, "-m", "yolo_compress.cli"]
TP_SCRIPT = """
import sys
from ultralytics import YOLO
from finetune_anchor import finetune, tp_prune
src, data, imgsz, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
finetune(tp_prune(YOLO(src).model, imgsz, 0.5), src, data, imgsz, epochs, out, "TP")
"""


def dataset_name(data: Path) -> str:
    """A short name for cache folders: the folder that holds data.yaml."""
    return Path(data).resolve().parent.name


def baseline(data: Path, model: str, imgsz: int, epochs: int) -> Path:
    """best.pt of ``model`` trained from scratch on ``data``; trained on first use, then reused. A run stopped part
    way (these take hours on a 2-core CPU) resumes from its last.pt."""
    from yolo_compress import YOLO

    name = f"base_{dataset_name(data)}_{Path(model).stem}_{imgsz}_{epochs}e"
    last = OUT / name / "weights" / "last.pt"
    if last.exists() and not finished(OUT / name):
        YOLO(str(last)).train(resume=True)
    elif not finished(OUT / name):
        YOLO(model).train(data=str(data), epochs=epochs, imgsz=imgsz, project=str(OUT), name=name, exist_ok=True,
                          seed=0, **STOCK)
    return OUT / name / "weights" / "best.pt"


def _cli(args: list[str]) -> float:
    """Run one yolo-compress command line; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([*CLI, *map(str, args)], check=True)
    return time.perf_counter() - start


def _train(model: Path, data: Path, imgsz: int, epochs: int, out: Path, name: str, seed: int, *extra: str) -> Path:
    """best.pt of a `yolo-compress train` run (reused when it finished)."""
    if not finished(out / name):
        _cli(["train", f"model={model}", f"data={data}", f"imgsz={imgsz}", f"epochs={epochs}", f"project={out}",
              f"name={name}", "exist_ok=True", f"seed={seed}", *(f"{k}={v}" for k, v in STOCK.items()), *extra])
    return out / name / "weights" / "best.pt"


def joined(changes: list[tuple[str, str, list[str]]]) -> tuple[str, str, list[str]]:
    """finetune_overrides' rows as one (label, run-name suffix, training arguments)."""
    return ("".join(label for label, _, _ in changes), "".join(suffix for _, suffix, _ in changes),
            [arg for _, _, args in changes for arg in args])


def ref_overrides(ref_nbs: int = 0, ref_close_mosaic: int = -1, ref_ema_tau: int = 0,
                  **_) -> list[tuple[str, str, list[str]]]:
    """The reference's changes from stock fine-tuning, as finetune_overrides gives them (label, suffix, arguments):
    `ref_nbs` > 0 sets the nominal batch size, `ref_close_mosaic` >= 0 the final epochs without mosaic, `ref_ema_tau`
    > 0 the EMA warm-up, so a flow change can be tried on the unpruned model too."""
    return finetune_overrides(nbs=ref_nbs, close_mosaic=ref_close_mosaic, ema_tau=ref_ema_tau)


def arm_ref(base: Path, data: Path, imgsz: int, budget: int, out: Path, seed: int, **options) -> Path:
    """The unpruned baseline fine-tuned `budget` epochs, stock unless ref_overrides says otherwise."""
    _, suffix, extra = joined(ref_overrides(**options))
    return _train(base, data, imgsz, budget, out, f"ref_s{seed}{suffix}", seed, *extra)


def arm_tp(base: Path, data: Path, imgsz: int, budget: int, out: Path, anchor: Path = ANCHOR, **_) -> Path:
    """The anchor's Torch-Pruning recipe (its `tp_prune` and stock `finetune`, imported from the anchor script). Only
    its TP row is run: its unpruned row is the same stock fine-tune as `ref` and would cost a second full budget."""
    folder = out / "anchor"
    with trusting(anchor.parent):
        done = finished(folder / "TP")
    if not done:
        subprocess.run([sys.executable, "-c", TP_SCRIPT, str(base), str(data), str(imgsz), str(budget), str(folder)],
                       check=True, cwd=anchor.parent, env={**os.environ, SAFE_ENV: "0"})  # it reloads its own files
    return folder / "TP" / "weights" / "best.pt"


def finetune_overrides(kd_alpha: float = 0.0, kd_temperature: float = 1.0, teacher: str = "base",
                       kd_type: str = "response", lr0: float = 0.0, nbs: int = 0, warmup_epochs: float = -1.0,
                       batch: int = 0, close_mosaic: int = -1, ema_tau: int = 0, then_ratio: float = 0.0,
                       then_at: int = 3, importance_metric: str = "l2", **_) -> list[tuple[str, str, list[str]]]:
    """The flow's fine-tuning changes from stock Ultralytics, as (table label, run-name suffix, training arguments),
    only those set: one list, so a run's folder name and its row label always say the same.

    `kd_alpha` > 0 distils from the teacher (`distill_alpha=kd_alpha`, `temperature=kd_temperature`, `distill_type=
    kd_type`: response, feature through adapters, or yolo: both); `lr0` > 0 fine-tunes with AdamW at that rate instead
    of Ultralytics' automatic choice (AdamW at 0.00111 for 5 classes); `nbs` > 0 sets the nominal batch size (stock 64:
    with batch 16, one optimizer step every 4 batches); `warmup_epochs` >= 0 replaces the 3 warm-up epochs (a fifth of
    a 15-epoch budget; 0 switches warm-up off); `batch` > 0 replaces the stock 16; `close_mosaic` >= 0 replaces the 10
    final epochs without mosaic; `ema_tau` > 0 replaces Ultralytics' 2000-step EMA warm-up (a 15-epoch fine-tune on
    439 images takes 105 optimizer steps at nbs 64, 420 at nbs 16, so its EMA barely averages); `then_ratio` > 0
    prunes in two steps: the flow's ratio before fine-tuning, then `then_ratio` of what is left at the start of
    fine-tuning epoch `then_at` (`pruning=True prune_at_epoch=`), so the model recovers from a smaller cut before the
    second one."""
    teacher_tag = teacher if teacher != "base" else ""
    kind = kd_type if kd_type != "response" else ""
    rows = [
        (kd_alpha > 0, f" kd{kd_alpha}" + (f" teacher {teacher}" if teacher_tag else "") + (f" {kind}" if kind else ""),
         f"_kd{kd_alpha}t{kd_temperature}" + (f"_{teacher}" if teacher_tag else "") + (f"_{kind}" if kind else ""),
         ["distillation=True", f"distill_alpha={kd_alpha}", f"temperature={kd_temperature}", f"distill_type={kd_type}"]),
        (lr0 > 0, f" lr0 {lr0}", f"_lr{lr0}", ["optimizer=AdamW", f"lr0={lr0}"]),
        (nbs > 0, f" nbs{nbs}", f"_nbs{nbs}", [f"nbs={nbs}"]),
        (warmup_epochs >= 0, f" warmup {warmup_epochs:g}", f"_wu{warmup_epochs:g}", [f"warmup_epochs={warmup_epochs}"]),
        (batch > 0, f" batch {batch}", f"_b{batch}", [f"batch={batch}"]),
        (close_mosaic >= 0, f" close_mosaic {close_mosaic}", f"_cm{close_mosaic}", [f"close_mosaic={close_mosaic}"]),
        (ema_tau > 0, f" ema_tau {ema_tau}", f"_ema{ema_tau}", [f"ema_tau={ema_tau}"]),
        (then_ratio > 0, f" then {then_ratio} at epoch {then_at}", f"_then{then_ratio}at{then_at}",
         ["pruning=True", f"pruning_ratio={then_ratio}", f"prune_at_epoch={then_at}",
          f"importance_metric={importance_metric}"]),
    ]
    return [(label, suffix, args) for applies, label, suffix, args in rows if applies]


def arm_flow(base: Path, data: Path, imgsz: int, budget: int, out: Path, seed: int, sparsity: int = 5,
             lambda_bn: float = 5e-4, ratio: float = 0.5, importance_metric: str = "l2", global_pruning: bool = False,
             target_flops: float = 0.0, prune_head: bool = False, reconstruct: bool = False, teacher: str = "base",
             round_to: int = ROUND_TO, head_ratio: float | None = None, **finetune) -> Path:
    """Sparsity epochs, prune, fine-tune: `budget` epochs in all. `target_flops` > 0 prunes with `target_flops=F`
    (the ratio keeping closest to that share of the GFLOPs) instead of `ratio`: one ratio keeps different shares of
    different models (0.5: 42 % of YOLO26n, 45 % of YOLO11n at 320); `prune_head` also prunes the Detect head's inner
    convolutions at the ratio, `head_ratio=H` at their own (prune's default 0: the head keeps its widths, its inputs
    shrink with the neck); `round_to` is prune's; `reconstruct` refits the convolutions that lost inputs (prune's
    `reconstruct=True`; without it the pruned model's BatchNorm is re-estimated, as in every run before it existed).
    With distillation the teacher is the baseline, or with `teacher=ref` the reference arm of seed 0 (the unpruned
    model after the same budget: a teacher the student could still learn from at the end). The fine-tuning's changes
    from stock are `finetune_overrides`'s."""
    start = base
    amount = f"f{target_flops}" if target_flops else f"{ratio}"
    tag = (f"s{seed}_sp{sparsity}_{importance_metric}{amount}{'g' if global_pruning else ''}"
           f"{'_head' if prune_head and head_ratio is None else f'_h{head_ratio or 0}'}_rt{round_to}"
           f"{'_rc' if reconstruct else ''}")  # runs before head_ratio (head pinned, round_to 8) had neither
    if sparsity:  # shared by every pruning setting with the same seed, epochs and penalty
        start = _train(base, data, imgsz, sparsity, out, f"flow_s{seed}_sp{sparsity}_bn{lambda_bn}_sparsity", seed,
                       "l1_regularization=True", "lambda_l1=0", f"lambda_bn={lambda_bn}")
    pruned = out / f"flow_{tag}_prune" / "weights" / "pruned.pt"
    if not pruned.exists():
        how = f"target_flops={target_flops}" if target_flops else f"pruning_ratio={ratio}"
        _cli(["prune", f"model={start}", f"data={data}", f"imgsz={imgsz}", how,
              f"importance_metric={importance_metric}", f"global={global_pruning}", f"prune_head={prune_head}",
              f"reconstruct={reconstruct}", f"round_to={round_to}",
              *([f"head_ratio={head_ratio}"] if head_ratio is not None else []),
              f"project={out}", f"name={pruned.parent.parent.name}", "exist_ok=True"])
    _, suffix, extra = joined(finetune_overrides(teacher=teacher, importance_metric=importance_metric, **finetune))
    name = f"flow_{tag}_ft{suffix}"
    if finetune.get("kd_alpha"):
        mentor = base if teacher == "base" else arm_ref(base, data, imgsz, budget, out, 0)
        extra.append(f"teacher_model={mentor}")
    return _train(pruned, data, imgsz, budget - sparsity, out, name, seed, *extra)


def arm_auto(base: Path, data: Path, imgsz: int, budget: int, out: Path, auto_nbs: int = 0, **_) -> Path:
    """The model auto chose, or when no candidate met the budget (auto exits 1) the best one it tried. `auto_nbs` > 0
    passes nbs to auto (its reference and candidates alike)."""
    import json

    run = out / ("auto" + (f"_nbs{auto_nbs}" if auto_nbs else ""))
    if not (run / "auto.json").exists():
        subprocess.run([*CLI, "auto", f"model={base}", f"data={data}", "target_flops=0.5", "max_map_drop=0.01",
                        f"epochs={budget}", f"imgsz={imgsz}", f"project={out}", f"name={run.name}", "int8=False",
                        *(f"{k}={v}" for k, v in STOCK.items()), *([f"nbs={auto_nbs}"] if auto_nbs else [])])
    summary = json.loads((run / "auto.json").read_text())
    if summary["chosen"]:
        return Path(summary["chosen"])
    print("auto: no candidate within the budget; its best-scoring candidate is reported")
    return Path(max(summary["tried"], key=lambda t: t["map50_95"])["artifact"])


ARMS = {"ref": arm_ref, "tp": arm_tp, "flow": arm_flow, "auto": arm_auto}


def onnx_of(pt: Path, imgsz: int, folder: Path) -> Path:
    """FP32 ONNX of a checkpoint through Ultralytics' exporter, from a copy (the export writes beside its input)."""
    from ultralytics import YOLO

    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{pt.parent.parent.name}.pt"
    shutil.copy(pt, copy)
    return Path(YOLO(str(copy)).export(format="onnx", imgsz=imgsz, verbose=False))


@contextlib.contextmanager
def trusting(module_dir: Path) -> Iterator[None]:
    """Full unpickling for the files this benchmark wrote itself: the anchor's pruned checkpoints hold its own
    SplitC2f class (from module_dir), which restricted loading rightly refuses."""
    from yolo_compress.checkpoints import enforce_safe_load

    old = os.environ.get(SAFE_ENV)
    os.environ[SAFE_ENV] = "0"
    enforce_safe_load()
    sys.path.insert(0, str(module_dir))
    try:
        yield
    finally:
        sys.path.remove(str(module_dir))
        os.environ[SAFE_ENV] = old if old is not None else "1"
        enforce_safe_load()


def measure_rows(models: dict[str, tuple[Path, float]], data: Path, imgsz: int, folder: Path,
                 anchor: Path = ANCHOR) -> list[dict]:
    from yolo_compress import measure

    with trusting(anchor.parent):
        return _measure_rows(models, data, imgsz, folder, measure)


OWN_EXPORT = ", yolo-compress export"  # label suffix of a file exported by measure.export_onnx (CSP inputs split)


def own_export(label: str) -> bool:
    """Rows also timed as yolo-compress exports them: the baseline and the project's own arms (the reference is the
    baseline's architecture; Torch-Pruning's recipe already has its C2f split and is its own tool's artifact)."""
    return label.startswith(("baseline", "flow", "auto"))


def _measure_rows(models: dict[str, tuple[Path, float]], data: Path, imgsz: int, folder: Path, measure) -> list[dict]:
    onnx = {}
    for label, (pt, _) in models.items():
        onnx[label] = onnx_of(pt, imgsz, folder)
        if own_export(label):
            onnx[label + OWN_EXPORT] = measure.onnx_for(pt, imgsz, folder, f"{pt.parent.parent.name}_own")
    from yolo_compress import latency

    ms = dict(zip(onnx, latency.alone(list(onnx.values()), imgsz, runs=LATENCY_RUNS, rounds=LATENCY_ROUNDS)))
    rows = []
    for label, (pt, seconds) in models.items():
        model = measure.load_model(pt)
        rows.append({"label": label, "params": measure.count_params(model), "gflops": measure.gflops(model, imgsz),
                     "ms": ms[label], "map": measure.evaluate(pt, str(data), imgsz)["map50_95"],
                     "seconds": recorded_seconds(label, pt) or seconds})
        if own_export(label):  # the same function: its mAP is the checkpoint's
            rows.append({**rows[-1], "label": label + OWN_EXPORT, "ms": ms[label + OWN_EXPORT]})
    return rows


LATENCY_RUNS, LATENCY_ROUNDS = 100, 5


def recorded_seconds(label: str, pt: Path) -> float:
    """Wall time of an arm's training, from its run folder's files (the arm may have been trained by an earlier
    invocation): a training run from its args.yaml (written at the start) to its results.csv (rewritten every
    epoch); auto from its first file to auto.json. Includes the time runs side by side with YOLO_COMPRESS_THREADS=1
    slowed each other. 0 when the folder does not tell."""
    if label.startswith("auto"):
        run = next(p for p in pt.parents if (p / "auto.json").exists())
        return (run / "auto.json").stat().st_mtime - min(f.stat().st_mtime for f in run.rglob("args.yaml"))
    run = pt.parent.parent
    start, end = run / "args.yaml", run / "results.csv"
    return end.stat().st_mtime - start.stat().st_mtime if start.exists() and end.exists() else 0.0


def arm_of(label: str) -> str:
    """The arm a row belongs to: its label without the seed."""
    return re.sub(r" seed \d+", "", label)


def table(rows: list[dict], imgsz: int, budget: int) -> list[str]:
    """One row per run, then the mean over seeds of each arm; 'vs ref' against the mean of the stock `ref` runs."""
    base = rows[0]
    refs = [r["map"] for r in rows if arm_of(r["label"]) == "ref"] or [base["map"]]
    ref = sum(refs) / len(refs)
    # Every unpruned run has the baseline's architecture: the median of their stock exports' latencies is the
    # reference time (what the user's unpruned model runs at today).
    base_ms = statistics.median(r["ms"] for r in rows if r["params"] == base["params"] and OWN_EXPORT not in r["label"])
    lines = [f"| arm ({budget} extra epochs) | params | GFLOPs@{imgsz} (share) | ORT ms@{imgsz} | speed-up "
             f"| mAP50-95 | vs ref (pt) | wall time |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['params']:,} | {r['gflops']:.2f} ({r['gflops'] / base['gflops']:.0%}) | "
                     f"{r['ms']:.2f} | {base_ms / r['ms']:.2f}x | {r['map']:.4f} | {100 * (r['map'] - ref):+.2f} | "
                     f"{r['seconds'] / 60:.0f} min |")
    lines += ["", "| arm, mean over its seeds | runs | mAP50-95 | vs ref (pt) |", "|---|---:|---:|---:|"]
    for arm in dict.fromkeys(arm_of(r["label"]) for r in rows if OWN_EXPORT not in r["label"]):
        maps = [r["map"] for r in rows if arm_of(r["label"]) == arm]
        mean = sum(maps) / len(maps)
        lines.append(f"| {arm} | {len(maps)} | {mean:.4f} | {100 * (mean - ref):+.2f} |")
    return lines


def sparsity_lines(base: Path, out: Path) -> list[str]:
    """What the sparsity epochs did to the BatchNorm gammas (the channels `bn` importance would remove)."""
    from yolo_compress.analysis import bn_stats
    from yolo_compress.measure import load_model

    lines = []
    for run in [base.parent.parent, *sorted(out.glob("flow_*_sparsity"))]:
        s = bn_stats(load_model(run / "weights" / "best.pt"))
        lines.append(f"BN gammas of {run.name}: mean |gamma| {s['bn_mean_abs_gamma']:.4f}, "
                     f"{s['bn_sparsity']:.1%} below 0.01")
    return ["", *lines]


def variants(flows: str | None, flow: dict) -> list[dict]:
    """The flow (or ref) settings to run: `flows="sparsity=5 seeds=0;sparsity=0 kd_alpha=0.2"` gives one arm per
    `;`-separated set (each over the shared `key=value` flow arguments; `seeds=` there overrides the run's), else the
    shared arguments alone."""
    if not flows:
        return [flow]
    return [{**flow, **key_value_args(part.split())} for part in str(flows).split(";") if part.strip()]


def seed_list(seeds) -> list[int]:
    """`seeds=0,1` arrives as (0, 1) (Ultralytics' value parsing), `seeds=0` as 0, "0,1" from a flows string."""
    return [int(s) for s in (seeds if isinstance(seeds, (list, tuple)) else str(seeds).split(","))]


def head_label(v: dict) -> str:
    """' head' when the head is pruned at the flow's ratio, ' head H' at its own ratio, '' when it keeps its widths."""
    if v.get("head_ratio") is not None:
        return f" head {v['head_ratio']}"
    return " head" if v.get("prune_head") else ""


def flow_label(v: dict, seed: int) -> str:
    """e.g. 'flow sp0 l2 0.5 kd0.2 nbs16 seed 1'."""
    changes = joined(finetune_overrides(**v))[0]
    amount = f"flops {v['target_flops']}" if v.get("target_flops") else v.get("ratio", 0.5)
    return (f"flow sp{v.get('sparsity', 5)} {v.get('importance_metric', 'l2')} {amount}"
            f"{' global' if v.get('global_pruning') else ''}{head_label(v)}"
            f"{'' if v.get('round_to', ROUND_TO) == ROUND_TO else ' round_to ' + str(v['round_to'])}"
            f"{' refit' if v.get('reconstruct') else ''}{changes} seed {seed}")


def main(data: str, model: str = "yolo26n.yaml", imgsz: int = 320, base_epochs: int = 100, budget: int = 15,
         seeds: str | int = 0, arms: str = "ref,tp,flow,auto", stage: str = "all", measure: bool = True,
         flows: str | None = None, refs: str | None = None, **flow) -> None:
    data_path = Path(data).resolve()
    base = baseline(data_path, model, imgsz, base_epochs)
    print(f"baseline: {base}")
    if stage == "baseline":
        return
    out = OUT / f"{dataset_name(data_path)}_{Path(model).stem}_{imgsz}_b{budget}"
    if "anchor" in flow:
        flow["anchor"] = Path(flow["anchor"]).resolve()
    models: dict[str, tuple[Path, float]] = {"baseline (no extra epochs)": (base, 0.0)}
    for arm in str(arms).split(","):
        for v in variants(flows, flow) if arm == "flow" else variants(refs, flow) if arm == "ref" else [flow]:
            v = dict(v)
            arm_seeds = v.pop("seeds", seeds)  # a flow or ref variant may name its own seeds
            for seed in (seed_list(arm_seeds) if arm in {"ref", "flow"} else [0]):
                start = time.perf_counter()
                pt = ARMS[arm](base=base, data=data_path, imgsz=imgsz, budget=budget, out=out, seed=seed, **v)
                label = (flow_label(v, seed) if arm == "flow" else
                         f"ref seed {seed}" + joined(ref_overrides(**v))[0] if arm == "ref" else
                         "auto" + (f" nbs{v['auto_nbs']}" if v.get("auto_nbs") else "") if arm == "auto" else arm)
                models[label] = (pt, time.perf_counter() - start)
    if not measure:  # arms trained side by side: measure later, alone, so that latency is not timed under load
        return
    rows = measure_rows(models, data_path, imgsz, out / "onnx", flow.get("anchor", ANCHOR))
    settings = (f"Settings: model={model} data={data_path} imgsz={imgsz} base_epochs={base_epochs} budget={budget} "
                f"seeds={seeds} refs={refs} flows={flows} flow={flow}; the measurements are from one run; mAP50-95 of each run's "
                "best.pt on the val split; latency: ORT CPU, batch 1, each file alone in its own process, median of "
                f"{LATENCY_ROUNDS} alternating rounds of {LATENCY_RUNS} runs; speed-up against the median latency of "
                "the unpruned runs' stock exports (one architecture); rows marked 'yolo-compress export' are the "
                "same checkpoint exported by yolo-compress (CSP input convolutions split, yolo_compress.csp); wall "
                "time of each arm's training (runs trained side by side with one thread each are slower than alone).")
    publish([*table(rows, imgsz, budget), "", settings, *sparsity_lines(base, out)], out / "results.md")


if __name__ == "__main__":
    os.environ.setdefault("YOLO_OFFLINE", "1")
    main(**key_value_args(sys.argv[1:]))
