"""Sparsity-training benchmark: fine-tune the shared yolo26n baseline with and without the BatchNorm-gamma L1 penalty.

Both runs start from the same checkpoint with the same data, epochs, optimizer and seed; the only difference is
`l1_regularization=True lambda_l1=0 lambda_bn=LAMBDA`. They run at the same time, as two processes, so that the
load of a shared machine falls on both alike; each records the compute time of every batch (forward, backward,
penalty, optimizer step; data loading excluded). Printed side by side: fraction of BN gammas below 1e-2, mean |gamma|,
mAP50-95 of each best.pt, and the median per-batch time ratio.

    YOLO_COMPRESS_BENCH_DIR=/work/main/runs/benchmarks PYTHONPATH=. python benchmarks/sparsity.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import ROOT, baseline, side_by_side_env, synthetic_data  # noqa: E402

BN_THRESHOLD = 1e-2


def _train(name: str, model: str, data: str, a: argparse.Namespace) -> None:
    """One run; writes <run>/batch_times.json (seconds per batch, after the first epoch's first batches)."""
    from yolo_compress import YOLO

    times: list[float] = []
    start = {}

    def batch_start(trainer):
        start["t"] = time.perf_counter()

    def batch_end(trainer):
        times.append(time.perf_counter() - start["t"])

    penalty = dict(l1_regularization=True, lambda_l1=0.0, lambda_bn=a.lambda_bn) if name == "sparse" else {}
    yolo = YOLO(model)
    yolo.add_callback("on_train_batch_start", batch_start)
    yolo.add_callback("on_train_batch_end", batch_end)
    yolo.train(data=data, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, nbs=a.nbs, optimizer=a.optimizer,
               lr0=a.lr0, warmup_epochs=a.warmup_epochs, workers=2, seed=0, project=str(a.project), name=name,
               exist_ok=True, **penalty)
    (a.project / name / "batch_times.json").write_text(json.dumps(times[5:]))


def _summary(run: Path, data: str, imgsz: int) -> dict[str, float]:
    from yolo_compress import analysis, measure

    best = run / "weights" / "best.pt"
    bn = analysis.bn_stats(measure.load_model(best), BN_THRESHOLD)
    times = json.loads((run / "batch_times.json").read_text())
    return {
        "bn_sparsity": bn["bn_sparsity"],
        "bn_mean_abs_gamma": bn["bn_mean_abs_gamma"],
        **measure.evaluate(str(best), data, imgsz=imgsz),
        "batch_s": statistics.median(times),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="start checkpoint (default: the shared 40-epoch yolo26n baseline)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lambda-bn", type=float, default=5e-4)
    # AdamW, not SGD: Ultralytics clips the gradient norm to 10 (it is ~230 per batch of 32 here), which scales an SGD
    # step, penalty included, down ~25x; AdamW's per-weight normalisation undoes that scale, so lr0 sets the speed.
    p.add_argument("--optimizer", default="AdamW")
    p.add_argument("--lr0", type=float, default=0.002)
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--batch", type=int, default=8, help="small batches: more optimizer steps for the same compute")
    p.add_argument("--nbs", type=int, default=8, help="nominal batch size (accumulate = nbs / batch)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--project", type=Path, default=ROOT / "sparsity")
    p.add_argument("--run", choices=("plain", "sparse"), help=argparse.SUPPRESS)
    a = p.parse_args()
    data = str(synthetic_data(imgsz=a.imgsz))
    model = a.model or str(baseline("yolo26n.yaml", imgsz=a.imgsz, epochs=40))
    if a.run:
        _train(a.run, model, data, a)
        return
    argv = [sys.executable, __file__, *sys.argv[1:], "--model", model]
    procs = [subprocess.Popen([*argv, "--run", name], env=side_by_side_env(2)) for name in ("plain", "sparse")]
    if any(proc.wait() for proc in procs):
        sys.exit("a training run failed")
    rows = {name: _summary(a.project / name, data, a.imgsz) for name in ("plain", "sparse")}
    print(f"\nyolo26n fine-tuned {a.epochs} epochs from {model}, imgsz {a.imgsz}, batch {a.batch}, nbs {a.nbs}, "
          f"{a.optimizer} lr0={a.lr0}, warmup {a.warmup_epochs:g} epoch(s); sparse: lambda_bn={a.lambda_bn:g}")
    print(f"{'':28}{'without':>12}{'with':>12}")
    for key, label, fmt in (("bn_sparsity", f"BN gammas < {BN_THRESHOLD:g}", "{:.1%}"),
                            ("bn_mean_abs_gamma", "mean |gamma|", "{:.4f}"),
                            ("map50_95", "mAP50-95", "{:.4f}"), ("map50", "mAP50", "{:.4f}"),
                            ("batch_s", "median s/batch", "{:.3f}")):
        print(f"{label:<28}{fmt.format(rows['plain'][key]):>12}{fmt.format(rows['sparse'][key]):>12}")
    d = 100 * (rows["sparse"]["map50_95"] - rows["plain"]["map50_95"])
    print(f"mAP50-95 difference (with - without): {d:+.2f} points")
    print(f"per-batch time ratio (with / without): {rows['sparse']['batch_s'] / rows['plain']['batch_s']:.3f}")


if __name__ == "__main__":
    main()
