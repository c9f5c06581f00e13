"""Benchmark of knowledge distillation: a small YOLO student fine-tuned without KD, with Ultralytics' built-in
`distill_model` (score-weighted feature MSE, dis=6.0) and with yolo-compress distillation, same budget and seeds.

The student is typically a pruned yolo26n (`yolo-compress prune model=<baseline best.pt> pruning_ratio=0.5`), the
teacher a trained yolo26s baseline (benchmarks/common.py). Arms run interleaved per seed (seed-major order), so the
machine's load hits them alike; per-step time is training time only (validation excluded) divided by the steps.
The step-time overhead is also timed interleaved in one process on one batch (the figure to quote).
Reported: mAP50-95 / mAP50 of each run's best.pt on the synthetic val split, mean and spread over seeds.

Usage: python benchmarks/distillation.py student=PATH [teacher=PATH] [epochs=5] [seeds=0,1,2] [fraction=1.0]
       [arms=none,builtin,builtin@DIS,ours] [distill_type=yolo] [temperature=4.0] [distill_alpha=0.7] [imgsz=160] [batch=32]
       [warmup_epochs=1.0] [teacher_epochs=20] [teacher_more=0] [out=runs/benchmarks/distillation]

Without teacher=, the teacher is yolo26s trained teacher_epochs from scratch (benchmarks/common.py), then, with
teacher_more=N, trained N more epochs from that checkpoint (cached as baseline_yolo26s_<imgsz>_<E>e+<N>e).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, baseline, finished, synthetic_data  # noqa: E402
from yolo_compress import measure  # noqa: E402

DEFAULTS = dict(student=None, teacher=None, epochs=5, seeds="0,1,2", fraction=1.0, arms="none,builtin,ours",
                distill_type="yolo", temperature=4.0, distill_alpha=0.7, imgsz=160, batch=32, warmup_epochs=1.0,
                teacher_epochs=20, teacher_more=0,
                out=str(ROOT / "distillation"))


def arm_args(arm: str, teacher: Path, opt: dict) -> dict:
    """Training arguments that distinguish the arms; everything else is shared."""
    if arm == "none":
        return {}
    if arm == "builtin":
        return {"distill_model": str(teacher)}
    if arm.startswith("builtin@"):  # the built-in loss with its weight `dis` set, e.g. builtin@1.0
        return {"distill_model": str(teacher), "dis": float(arm.partition("@")[2])}
    if arm == "ours":
        return {"distillation": True, "teacher_model": str(teacher), "distill_type": opt["distill_type"],
                "temperature": float(opt["temperature"]), "distill_alpha": float(opt["distill_alpha"])}
    raise ValueError(f"'arms' entry '{arm}' is invalid. Valid arms are none, builtin, builtin@DIS, ours.")


def run(arm: str, seed: int, student: Path, teacher: Path, data: Path, opt: dict) -> dict:
    """Fine-tune the student once; returns mAP of its best.pt and the mean training step time. Cached by result.json."""
    from yolo_compress import YOLO

    out = Path(opt["out"])
    name = f"{arm}_s{seed}"
    cached = out / name / "result.json"
    if cached.exists():
        return json.loads(cached.read_text())
    model = YOLO(str(student))
    clock = {"train_s": 0.0, "steps": 0}

    def epoch_start(trainer):
        clock["t0"] = time.perf_counter()

    def epoch_end(trainer):
        clock["train_s"] += time.perf_counter() - clock["t0"]
        clock["steps"] += len(trainer.train_loader)

    model.add_callback("on_train_epoch_start", epoch_start)
    model.add_callback("on_train_epoch_end", epoch_end)
    model.train(data=str(data), epochs=int(opt["epochs"]), imgsz=int(opt["imgsz"]), batch=int(opt["batch"]),
                seed=seed, deterministic=True, fraction=float(opt["fraction"]),
                warmup_epochs=float(opt["warmup_epochs"]), workers=2, plots=False,
                project=str(out), name=name, exist_ok=True, **arm_args(arm, teacher, opt))
    metrics = measure.evaluate(out / name / "weights" / "best.pt", str(data), imgsz=int(opt["imgsz"]))
    result = {"arm": arm, "seed": seed, **metrics, "step_s": clock["train_s"] / max(clock["steps"], 1)}
    cached.write_text(json.dumps(result))
    return result


def default_teacher(imgsz: int, epochs: int, more: int, data: Path) -> Path:
    """yolo26s baseline, optionally trained `more` epochs further (a fresh schedule from its best.pt), cached."""
    from yolo_compress import YOLO

    best = baseline("yolo26s.yaml", imgsz, epochs)
    if more <= 0:
        return best
    name = f"{best.parent.parent.name}+{more}e"
    longer = ROOT / name / "weights" / "best.pt"
    if not finished(ROOT / name):
        YOLO(str(best)).train(data=str(data), epochs=more, imgsz=imgsz, batch=32, project=str(ROOT), name=name,
                              exist_ok=True, seed=0)
    return longer


def train_batch(data: Path, imgsz: int, batch: int) -> dict:
    """One preprocessed training batch (images and labels) from the benchmark data."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data))
    dataset = build_yolo_dataset(get_cfg(overrides={"imgsz": imgsz}), info["train"], batch, info, mode="train")
    b = next(iter(build_dataloader(dataset, batch, 0, shuffle=False)))
    b["img"] = b["img"].float() / 255
    return b


def step_times(student: Path, teacher: Path, data: Path, opt: dict, steps: int = 10) -> dict:
    """Seconds per forward+backward step of each arm, timed interleaved in one process (ratios survive shared load).

    Same batch, same student weights; `builtin` goes through Ultralytics' DistillationModel, `ours` through
    YOLODistiller with the benchmark's distill_type; optimizer and data loading are excluded (identical for all).
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.distill_model import DistillationModel
    from ultralytics.nn.tasks import load_checkpoint

    from yolo_compress.distill import KnowledgeDistiller

    imgsz, bs = int(opt["imgsz"]), int(opt["batch"])
    b = train_batch(data, imgsz, bs)

    def fresh():
        m = load_checkpoint(student)[0]
        m.args = get_cfg(overrides={"imgsz": imgsz})
        for p in m.parameters():
            p.requires_grad_(True)
        return m.train()

    plain, ours_student, builtin_student = fresh(), fresh(), fresh()
    kd = KnowledgeDistiller(teacher, ours_student, float(opt["temperature"]), float(opt["distill_alpha"]),
                            response=opt["distill_type"] in {"response", "yolo"},
                            features=opt["distill_type"] in {"feature", "yolo"})
    kd.attach()
    builtin = DistillationModel(teacher_model=str(teacher), student_model=builtin_student).train()

    def none_step():
        plain.loss(b)[0].sum().backward()

    def ours_step():
        preds = ours_student(b["img"])
        (ours_student.loss(b, preds)[0].sum() + kd(b["img"], preds) * bs).backward()

    def builtin_step():
        builtin.loss(b)[0].sum().backward()

    arms = {"none": none_step, "builtin": builtin_step, "ours": ours_step}
    times = {k: [] for k in arms}
    for i in range(steps + 1):
        for k, fn in arms.items():
            t0 = time.perf_counter()
            fn()
            if i:  # the first round warms up
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def summary(results: list[dict], arms: list[str]) -> str:
    """Markdown table: mAP50-95 mean ± std over seeds (min-max), mean step time and its ratio to no KD."""
    rows = ["| arm | runs | mAP50-95 mean ± std (min-max) | mAP50 mean | per-step s | step time vs none |",
            "|---|---|---|---|---|---|"]
    by_arm = {a: [r for r in results if r["arm"] == a] for a in arms}
    ref = statistics.mean(r["step_s"] for r in by_arm["none"]) if by_arm.get("none") else None
    for a, rs in by_arm.items():
        if not rs:
            continue
        m = [r["map50_95"] for r in rs]
        step = statistics.mean(r["step_s"] for r in rs)
        ratio = f"{step / ref:.2f}x" if ref else "-"
        std = statistics.stdev(m) if len(m) > 1 else 0.0
        rows.append(f"| {a} | {len(rs)} | {statistics.mean(m):.4f} ± {std:.4f} ({min(m):.4f}-{max(m):.4f}) | "
                    f"{statistics.mean(r['map50'] for r in rs):.4f} | {step:.2f} | {ratio} |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    opt = dict(DEFAULTS)
    for a in argv:
        k, _, v = a.partition("=")
        if k not in DEFAULTS:
            raise SystemExit(f"'{k}' is not an argument of this benchmark. Valid: {', '.join(DEFAULTS)}.")
        opt[k] = v
    opt["out"] = str(Path(opt["out"]).resolve())  # Ultralytics would nest a relative project under runs/detect
    if not opt["student"]:
        raise SystemExit("'student' is required, e.g. student=runs/prune/prune/weights/pruned.pt")
    imgsz = int(opt["imgsz"])
    data = synthetic_data(imgsz=imgsz)
    teacher = (Path(opt["teacher"]) if opt["teacher"]
               else default_teacher(imgsz, int(opt["teacher_epochs"]), int(opt["teacher_more"]), data))
    arms = opt["arms"].split(",")
    Path(opt["out"]).mkdir(parents=True, exist_ok=True)
    teacher_map = measure.evaluate(teacher, str(data), imgsz=imgsz)
    student_map = measure.evaluate(opt["student"], str(data), imgsz=imgsz)
    results = [run(arm, int(s), Path(opt["student"]), teacher, data, opt)
               for s in opt["seeds"].split(",") for arm in arms]
    table = summary(results, arms)
    steps = step_times(Path(opt["student"]), teacher, data, opt)
    timing = " | ".join(f"{k} {v:.3f} s ({v / steps['none']:.2f}x)" for k, v in steps.items())
    report = {"options": opt, "teacher": str(teacher), "teacher_map": teacher_map, "student_start_map": student_map,
              "results": results, "table": table, "step_times_interleaved": steps}
    (Path(opt["out"]) / "report.json").write_text(json.dumps(report, indent=2))
    print(f"teacher {teacher}: mAP50-95 {teacher_map['map50_95']:.4f}; "
          f"student before fine-tuning: {student_map['map50_95']:.4f}")
    print(table)
    print(f"forward+backward per step, interleaved, median of 10: {timing}")


if __name__ == "__main__":
    main(sys.argv[1:])
