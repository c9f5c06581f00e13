"""`yolo-compress auto model=best.pt data=data.yaml target_flops=0.5|target_latency_ms=8 [max_map_drop=0.01]`.

The smallest model in an mAP budget.

A candidate keeps a fraction of the GFLOPs and is fine-tuned for `epochs`. By default (`candidates=channel`) it is
channel-pruned by `prune target_flops=F importance_metric=l2 reconstruct=True`: one ratio for every channel group,
found to meet the fraction, widths in steps of 16, the Detect head's own widths kept while its inputs shrink with the
neck (prune's defaults, docs/pruning.md), the layers that lost inputs refitted (REFIT_WHY). On real
photographs that shape of pruning kept far more than the alternative
(`candidates=suggest`: a sensitivity plan that removes whole blocks and sets per-group ratios): 0.0253 against 0.0049
mAP50-95 right after pruning to half the FLOPs on vehicles, and issue #17's own 15-epoch fine-tunes, 0.418 for
head-kept l1 0.5 against 0.343 for auto's block-removing plan (docs/pruning.md).
It is judged against the fair reference: the input model fine-tuned for the same `epochs` (an input that was not
fully converged gains from those epochs too, so comparing with the input itself would flatter every candidate). The
target fraction is tried first; if it breaks the `max_map_drop` budget, the rest of the ladder (relaxed towards 90 %)
is bisected, assuming a larger model never does worse, so at most 1 + log2(rungs) candidates are fine-tuned instead of
one per rung; a rung that the line between a rejected and an accepted candidate rules out is not trained (`search`),
and a rung that prunes to the same widths as one already trained reuses it (`Trials`). The chosen one is
INT8-quantized when `int8=True`. Reference and candidates run as pipeline recipes, so a killed run resumes where it
stopped and every output lands in runs/compress/NAME/.

Candidates are fine-tuned with response distillation from the input at a light weight (DISTILL: distill_alpha 0.2,
temperature 1): on real photographs (benchmarks/real_data.py, vehicles, YOLO26n at 320, l2 0.5 pruned, 15 epochs) it
scored 0.1719 and 0.1682 mAP50-95 against 0.1493 and 0.1434 without, for seeds 0 and 1 (docs/pruning.md); issue
#17's heavier setting (alpha 0.7, temperature 4, a loss that dwarfed the detection loss) had cost 5 points.
auto.json records this. The candidates also take an optimizer step every batch (nbs = batch, unless nbs is given):
a pruned model recovering in a few epochs gained from the extra steps (+1.3 and +2.0 points with distillation, seeds
0 and 1), the unpruned reference did not (STEPS_WHY).

With `target_latency_ms` the first rung is found by timing: latency does not depend on the weights, so untrained
pruned copies at every FLOPs fraction are exported and timed (ONNX Runtime, each alone beside the input model), and the
largest fraction that meets the target starts the ladder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ultralytics.cfg import DEFAULT_CFG
from ultralytics.utils import LOGGER, colorstr

from yolo_compress import latency, measure
from yolo_compress.cfg import ArgumentError
from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline import results, runner

TRAIN_KEYS = ("batch", "workers", "optimizer", "lr0", "lrf", "warmup_epochs", "nbs", "seed", "patience", "plots")  # passed on
RELAX_STEP, MOST_KEPT = 0.1, 0.9


def ladder(target: float, step: float = RELAX_STEP, most: float = MOST_KEPT) -> list[float]:
    """FLOPs-kept fractions to try: the target, then relaxed by `step` up to `most` (smallest model first)."""
    rungs = [round(target, 4)]
    while rungs[-1] + step <= most + 1e-9:
        rungs.append(round(rungs[-1] + step, 4))
    return rungs


# Light response distillation from the input (module docstring: measured on real photographs, two seeds).
DISTILL = {"distillation": True, "distill_type": "response", "distill_alpha": 0.2, "temperature": 1.0}
DISTILL_WHY = ("response distillation from the input, distill_alpha 0.2, temperature 1: +2.3 and +2.5 points "
               "mAP50-95 over no distillation for a 50 % FLOPs YOLO26n on real photographs, seeds 0 and 1; the "
               "reference (the input after the same epochs) as teacher did no better: 0.1856 against 0.1861 mAP50-95, "
               "mean of two seeds (benchmarks/real_data.py, docs/pruning.md)")
# Channel candidates are pruned with their pruned layers refitted to the input's outputs (prune reconstruct=True).
REFIT_WHY = ("the convolutions that lost input channels refitted to the input's outputs on 64 train images: a "
             "YOLO26n pruned to 48 % of its FLOPs (stem whole) on real photographs starts fine-tuning at 0.123 "
             "mAP50-95 instead of 0.025, and three 15-epoch distilled fine-tunes ended at 0.2083 / 0.1931 / 0.1838 "
             "(mean 0.1951) against 0.1845 / 0.1877 without (benchmarks/real_data.py, docs/pruning.md)")
# Candidates (not the reference) take an optimizer step every batch (step_every_batch).
STEPS_WHY = ("an optimizer step every batch (nbs = batch) for the pruned candidates: with 15 epochs on 439 images the "
             "stock nbs 64 gives ~7 steps per epoch; nbs 16 lifted a 50 % FLOPs YOLO26n by +2.7 points mAP50-95 "
             "without distillation and +1.3 / +2.0 with it (seeds 0 / 1), while the unpruned reference did not gain "
             "(-0.6, seed 0) (benchmarks/real_data.py, docs/pruning.md)")


def search(rungs: list[float], evaluate: Callable[[float], float], reference: float,
           max_map_drop: float) -> tuple[float | None, list[tuple[float, float]]]:
    """The smallest rung within budget (None if none is) and every (rung, mAP) tried, in order: the first rung (the
    target), then a bisection of the others, which assumes keeping more FLOPs never scores lower.

    A rung between a rejected and an accepted one is trained only when the straight line through their measured mAPs
    predicts it within budget (`predicted_within`): each candidate costs a full fine-tune, and on real photographs
    the search otherwise spent a third one on a rung that line had already ruled out. The line may be pessimistic
    (mAP rises steeply near the target), so a skipped rung can cost model size; the chosen rung is always measured."""
    tried: list[tuple[float, float]] = []
    floor = reference - max_map_drop

    def within(i: int) -> bool:
        m = evaluate(rungs[i])
        tried.append((rungs[i], m))
        ok = m >= floor
        LOGGER.info(f"{colorstr('auto:')} FLOPs kept {rungs[i]:.0%}: mAP50-95 {m:.4f} (drop {reference - m:+.4f} "
                    f"against the reference, budget {max_map_drop}) -> {'accepted' if ok else 'rejected'}")
        return ok

    if within(0):
        return rungs[0], tried
    lo, hi, best, below, above = 1, len(rungs) - 1, None, tried[0], None
    while lo <= hi:
        mid = (lo + hi) // 2
        if above and not predicted_within(rungs[mid], below, above, floor):
            LOGGER.info(f"{colorstr('auto:')} FLOPs kept {rungs[mid]:.0%}: not trained, the line between "
                        f"{below[0]:.0%} and {above[0]:.0%} puts it below the budget")
            lo = mid + 1
        elif within(mid):
            best, above, hi = mid, tried[-1], mid - 1
        else:
            below, lo = tried[-1], mid + 1
    return (rungs[best] if best is not None else None), tried


def predicted_within(frac: float, below: tuple[float, float], above: tuple[float, float], floor: float) -> bool:
    """Whether mAP at `frac`, read off the straight line through two measured (fraction, mAP) points, reaches `floor`."""
    (f0, m0), (f1, m1) = below, above
    return m0 + (m1 - m0) * (frac - f0) / (f1 - f0) >= floor


def fraction_for_latency(fractions: list[float], latencies: list[float], target_ms: float, input_ms: float) -> float:
    """Largest FLOPs-kept fraction whose measured latency meets the target (the least pruning that is fast enough)."""
    if input_ms <= target_ms:
        raise ArgumentError(f"'target_latency_ms={target_ms}' is already met by the input model ({input_ms:.2f} ms); "
                            "pass a lower target or use target_flops.")
    fast = [f for f, ms in zip(fractions, latencies) if ms <= target_ms]
    if not fast:
        raise ArgumentError(f"'target_latency_ms={target_ms}' is out of reach: keeping {min(fractions):.0%} of the "
                            f"FLOPs still runs {latencies[fractions.index(min(fractions))]:.2f} ms "
                            f"(input {input_ms:.2f} ms). Valid targets here are above that.")
    return max(fast)


class InputSensitivity:
    """The input model, its calibration images and its block/channel sensitivity rows, computed on first use.

    The rows are the costly part of a `suggest` plan; one auto run plans every rung and the latency probe from the
    same model, so they are computed once instead of once per rung.
    """

    def __init__(self, args: dict[str, Any]):
        from yolo_compress.cfg import DEFAULTS

        self.args, self.opt = args, (DEFAULTS["importance_metric"], DEFAULTS["round_to"])
        self._loaded: tuple | None = None
        self._model = None  # the model alone, for channel candidates (no calibration images or sensitivities)

    def model(self):
        """The input model in FP32 eval mode, loaded once (never pruned itself: candidates prune copies)."""
        from yolo_compress.pruning.suggest import load_fp32

        if self._loaded is not None:
            return self._loaded[0]
        if self._model is None:
            self._model = load_fp32(Path(str(self.args["model"])), self.args["device"])
        return self._model

    def loaded(self) -> tuple[Any, Any, tuple[list[dict], list[dict]]]:
        """(model, images, rows), computed once."""
        if self._loaded is None:
            from yolo_compress.pruning.suggest import load_input, sensitivities

            a = self.args
            model, images = load_input(Path(str(a["model"])), str(a["data"]), a["imgsz"], a["device"])
            self._loaded = model, images, sensitivities(model, images, a["imgsz"], *self.opt)
        return self._loaded

    def plan(self, frac: float) -> tuple[dict, list[dict], list[dict]]:
        """suggest's plan for keeping `frac` of the GFLOPs, with the sensitivity rows it used."""
        from yolo_compress.pruning.suggest import suggest

        model, images, rows = self.loaded()
        return suggest(model, images, frac, self.args["imgsz"], *self.opt, rows=rows)


def latency_probe(args: dict[str, Any], run_dir: Path, fractions: list[float] | None = None,
                  source: InputSensitivity | None = None) -> tuple[list[float], list[float], float]:
    """FP32 ONNX latency of untrained pruned copies at FLOPs fractions (0.1..0.9), and of the input, timed together."""
    from yolo_compress.pruning.checkpoint import save_checkpoint

    source = source or InputSensitivity(args)
    imgsz, probe_dir = args["imgsz"], run_dir / "latency_probe"
    fractions, onnx = fractions or ladder(0.1), []
    for frac in fractions:
        ckpt = save_checkpoint(pruned_copy(args, source, frac), probe_dir / f"{candidate_dir(frac)}.pt")
        onnx.append(measure.onnx_for(ckpt, imgsz, probe_dir, candidate_dir(frac)))
    ms = latency.alone([measure.onnx_for(Path(str(args["model"])), imgsz, probe_dir, "input"), *onnx], imgsz)
    for frac, t in zip(fractions, ms[1:]):
        LOGGER.info(f"{colorstr('auto:')} FLOPs kept {frac:.0%}: {t:.2f} ms (input {ms[0]:.2f} ms)")
    return fractions, ms[1:], ms[0]


CHANNEL_METRIC = "l2"  # candidates=channel ranks by L2 norm: 0.0253 mAP50-95 right after pruning half the FLOPs of
# the vehicles YOLO26n, against 0.0067 for l1 and 0.0028 for bn (docs/pruning.md)


def pruned_copy(args: dict[str, Any], source: InputSensitivity, frac: float):
    """An untrained copy of the input pruned as the candidate keeping `frac` of the GFLOPs will be (its shape: what
    latency depends on)."""
    from yolo_compress.pruning.adapters import clean_copy
    from yolo_compress.pruning.channel import ChannelPruner, ratio_for_flops
    from yolo_compress.pruning.suggest import apply_plan

    if args["candidates"] == "suggest":
        plan, _, _ = source.plan(frac)
        pruned = clean_copy(source.loaded()[0])
        apply_plan(pruned, plan, args["imgsz"], *source.opt)
        return pruned
    model = source.model()
    ratio = ratio_for_flops(model, frac, args["imgsz"], lambda m, r: ChannelPruner(m, r, CHANNEL_METRIC).prune())
    pruned = clean_copy(model)
    ChannelPruner(pruned, ratio, CHANNEL_METRIC).prune()
    return pruned


class Trials:
    """Candidates fine-tuned and scored once per pruned architecture: kept widths move in steps of round_to, so two
    rungs can prune to the same widths, and one fine-tune serves both (`same_as` maps the later to the earlier)."""

    def __init__(self, train: Callable[[float], Path], score: Callable[[Path], float],
                 shape: Callable[[float], tuple]):
        self.train, self.score, self.shape = train, score, shape
        self.artifacts: dict[float, Path] = {}
        self.maps: dict[float, float] = {}
        self.same_as: dict[float, float] = {}
        self.seconds: dict[float, float] = {}  # wall time of each trained rung's fine-tune and scoring
        self._trained: dict[tuple, float] = {}  # architecture -> the rung that trained it

    def __call__(self, frac: float) -> float:
        """mAP50-95 of the candidate keeping `frac` of the GFLOPs, trained unless its architecture already was."""
        shape = self.shape(frac)
        if shape in self._trained:
            first = self.same_as[frac] = self._trained[shape]
            LOGGER.info(f"{colorstr('auto:')} FLOPs kept {frac:.0%} prunes to the same architecture as {first:.0%}: "
                        "not trained again")
            self.artifacts[frac] = self.artifacts[first]
            return self.maps[first]
        self._trained[shape] = frac
        start = time.perf_counter()
        self.artifacts[frac] = self.train(frac)
        self.maps[frac] = self.score(self.artifacts[frac])
        self.seconds[frac] = time.perf_counter() - start
        return self.maps[frac]


def architecture(model) -> tuple:
    """Every parameter's shape: equal for two pruned copies exactly when they were pruned to the same widths."""
    return tuple(tuple(p.shape) for p in model.parameters())


def prune_stage(args: dict[str, Any], run_dir: Path, frac: float, source: InputSensitivity) -> dict[str, Any]:
    """The `prune` arguments of the candidate keeping `frac` of the GFLOPs (module docstring: `candidates`)."""
    if args["candidates"] == "suggest":
        return {"plan": str(plan_for(args, run_dir, frac, source))}
    return {"target_flops": frac, "importance_metric": CHANNEL_METRIC, "reconstruct": True}


def candidate_dir(frac: float) -> str:
    return f"flops{round(frac * 100):02d}"


def plan_for(args: dict[str, Any], run_dir: Path, frac: float, source: InputSensitivity) -> Path:
    """The suggest plan for keeping `frac` of the GFLOPs, reused when an earlier run already wrote it."""
    from yolo_compress.pruning.plan import plan_header
    from yolo_compress.pruning.suggest import save_suggestion

    plan_yaml = run_dir / "plans" / candidate_dir(frac) / "plan.yaml"
    if plan_yaml.exists():
        return plan_yaml
    plan, blocks, channels = source.plan(frac)
    header = plan_header(Path(str(args["model"])), frac, args["imgsz"])
    return save_suggestion(plan, blocks, channels, plan_yaml.parent, header)


def step_every_batch(train: dict[str, Any]) -> dict[str, Any]:
    """`nbs` = the batch size (an optimizer step every batch; Ultralytics steps every nbs/batch batches, nbs 64), unless
    the user set nbs or an automatic batch size (batch < 1). See STEPS_WHY."""
    batch = train.get("batch", DEFAULT_CFG.batch)
    return {} if "nbs" in train or batch < 1 else {"nbs": batch}


def candidate_recipe(args: dict[str, Any], run_dir: Path, frac: float, prune: dict[str, Any],
                     quantize: bool) -> dict[str, Any]:
    """prune -> train distilled from the input [-> quantize], as a pipeline recipe (see DISTILL, STEPS_WHY)."""
    train = {"epochs": args["epochs"], **DISTILL, "teacher_model": str(args["model"]), **args["train"]}
    train.update(step_every_batch(train))
    shared = {k: train.pop(k) for k in ("batch", "workers") if k in train}
    stages = [{"name": "prune", "prune": prune}, {"name": "finetune", "train": train}]
    if quantize:
        stages.append({"name": "int8", "quantize": {"int8": True}})
    r = {"name": candidate_dir(frac), "model": str(args["model"]), "data": str(args["data"]),
         "imgsz": args["imgsz"], "project": str(run_dir), "stages": stages, **shared}
    if args["device"] is not None:
        r["device"] = args["device"]
    return recipes.load_dict(r)


def reference_recipe(args: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The input fine-tuned for the candidates' epochs with their settings: what a candidate must come close to."""
    train = {"epochs": args["epochs"], **args["train"]}
    shared = {k: train.pop(k) for k in ("batch", "workers") if k in train}
    r = {"name": "reference", "model": str(args["model"]), "data": str(args["data"]), "imgsz": args["imgsz"],
         "project": str(run_dir), "stages": [{"name": "finetune", "train": train}], **shared}
    if args["device"] is not None:
        r["device"] = args["device"]
    return recipes.load_dict(r)


def run_reference(args: dict[str, Any], run_dir: Path) -> Path:
    r = reference_recipe(args, run_dir)
    return runner.artifact_of(runner.run(r, run_dir), 1, r["stages"][0])


def run_candidate(args: dict[str, Any], run_dir: Path, frac: float, source: InputSensitivity,
                  quantize: bool = False) -> Path:
    """Artifact of the candidate's last stage (the fine-tuned .pt, or the INT8 .onnx with `quantize`)."""
    r = candidate_recipe(args, run_dir, frac, prune_stage(args, run_dir, frac, source), quantize)
    cdir = runner.run(r, run_dir)
    return runner.artifact_of(cdir, len(r["stages"]), r["stages"][-1])


def faster_of(final: Path | None, rows: list[dict[str, Any]]) -> tuple[Path | None, str | None]:
    """The INT8 artifact only when it pays its way against the FP32 checkpoint it came from (results.ship, on the
    measured `rows`; its accuracy was already held to auto's own budget against the reference); otherwise that
    checkpoint, with the reason."""
    if final is None or final.suffix != ".onnx":
        return final, None
    int8 = next(r for r in rows if r["artifact"] == str(final))
    fp32 = next(r for r in rows if r["stage"] == int8["stage"].removesuffix("_int8"))
    row, why = results.ship(int8, fp32, max_map_drop=None)
    if row is fp32:
        LOGGER.warning(f"{colorstr('auto:')} INT8 not shipped: {why}")
    return Path(row["artifact"]), why


def wall_seconds(reference: float, candidates: dict[float, float], total: float) -> dict[str, Any]:
    """What the search cost, in seconds and in reference fine-tunes (the unit a user weighs auto against: one
    fine-tune of the unpruned model). A resumed run counts only what this invocation did."""
    return {"reference": round(reference, 1), "candidates": {f: round(s, 1) for f, s in candidates.items()},
            "total": round(total, 1), "total_in_reference_fine_tunes": round(total / max(reference, 1e-9), 2)}


def auto(args: dict[str, Any]) -> Path | None:
    """Search the ladder, write results.md/json and auto.json; the chosen artifact, or None if none is in budget.

    `args` are auto's checked arguments (`cfg.resolve("auto", ...)`), with `train` holding the training settings
    (TRAIN_KEYS) given to the reference and every candidate."""
    run_dir = (Path(str(args["project"])) / str(args["name"])).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data, imgsz, drop = str(args["data"]), args["imgsz"], args["max_map_drop"]
    probe, source = None, InputSensitivity(args)
    if args["target_latency_ms"] is not None:
        fractions, ms, input_ms = latency_probe(args, run_dir, source=source)
        args["target_flops"] = fraction_for_latency(fractions, ms, args["target_latency_ms"], input_ms)
        probe = {"input_ms": input_ms, "ms": dict(zip(fractions, ms)), "flops_kept": args["target_flops"]}
    input_map = measure.evaluate(str(args["model"]), data, imgsz)["map50_95"]
    ref_start = time.perf_counter()
    reference = run_reference(args, run_dir)
    ref_seconds = time.perf_counter() - ref_start  # the fine-tune alone: the unit auto's cost is counted in
    ref_map = measure.evaluate(str(reference), data, imgsz)["map50_95"]
    LOGGER.info(f"{colorstr('auto:')} input {args['model']}: mAP50-95 {input_map:.4f}, after the same "
                f"{args['epochs']} epochs of fine-tuning (the reference) {ref_map:.4f}; trying FLOPs kept "
                f"{', '.join(f'{f:.0%}' for f in ladder(args['target_flops']))} until the drop is <= {drop}")
    trials = Trials(lambda f: run_candidate(args, run_dir, f, source),
                    lambda pt: measure.evaluate(str(pt), data, imgsz)["map50_95"],
                    lambda f: architecture(pruned_copy(args, source, f)))
    chosen, tried = search(ladder(args["target_flops"]), trials, ref_map, drop)
    artifacts, same_as = trials.artifacts, trials.same_as
    chosen = same_as.get(chosen, chosen)  # the rung that trained the chosen architecture
    stages = [("reference", reference), ("input", Path(str(args["model"])))]
    stages += [(candidate_dir(f), artifacts[f]) for f, _ in tried if f not in same_as]
    final = artifacts.get(chosen) if chosen is not None else None
    if final is not None and args["int8"]:
        int8 = run_candidate(args, run_dir, chosen, source, quantize=True)
        stages.append((f"{candidate_dir(chosen)}_int8", int8))
        int8_map = measure.evaluate(str(int8), data, imgsz)["map50_95"]
        if int8_map >= ref_map - drop:
            final = int8
        else:
            LOGGER.warning(f"{colorstr('auto:')} INT8 mAP50-95 {int8_map:.4f} breaks the budget; shipping the FP32 "
                           f"pruned checkpoint {final}")
    rows = results.measure_artifacts(stages, data, imgsz, run_dir / "onnx")
    final, int8_note = faster_of(final, rows)
    md = results.write(run_dir, rows, imgsz, {"stage": next(r["stage"] for r in rows if r["artifact"] == str(final)),
                                              "artifact": str(final), "why": int8_note or "the chosen candidate"}
                       if final else None)
    summary = {"chosen": str(final) if final else None, "input_map50_95": input_map, "int8": int8_note,
               "reference": {"artifact": str(reference), "map50_95": ref_map}, "max_map_drop": drop,
               "distillation": {"used": True, **{k: v for k, v in DISTILL.items() if k != "distillation"},
                                "why": DISTILL_WHY},
               "candidate_steps": {**step_every_batch(args["train"]), "why": STEPS_WHY},
               **({"candidate_refit": {"reconstruct": True, "why": REFIT_WHY}} if args["candidates"] == "channel" else {}),
               "latency_probe": probe,
               "tried": [{"flops_kept": f, "map50_95": m, "artifact": str(artifacts[f]),
                          **({"same_architecture_as": same_as[f]} if f in same_as else {})} for f, m in tried],
               "wall_seconds": wall_seconds(ref_seconds, trials.seconds, time.perf_counter() - start)}
    (run_dir / "auto.json").write_text(json.dumps(summary, indent=2))
    LOGGER.info(f"\n{results.to_markdown(rows)}\n\n{colorstr('auto:')} results {md}")
    if final is None:
        best = max(tried, key=lambda t: t[1])
        LOGGER.warning(f"{colorstr('auto:')} no candidate within max_map_drop={drop}; best was FLOPs kept "
                       f"{best[0]:.0%} ({artifacts[best[0]]}) with drop {(ref_map - best[1]) * 100:.2f} pt")
        return None
    row = next(r for r in rows if r["artifact"] == str(final))
    ref = rows[0]
    print(f"chosen: {final} (FLOPs {row['gflops'] / ref['gflops']:.0%}, "
          f"mAP drop {(ref['map50_95'] - row['map50_95']) * 100:.2f} pt)")
    return final
