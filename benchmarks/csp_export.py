"""What the exported graph's layout costs in ONNX Runtime: the CSP split (yolo_compress.csp) and pruned widths.

For each model yaml: the unpruned detector and the same detector pruned with `prune`'s defaults at each `ratio`
(with the matching `round_to`: the multiple every kept width is rounded up to; the widths a uniform ratio keeps do
not depend on the weights, so random-init models built offline have the trained models' architecture and latency),
each exported twice by `measure.export_onnx`: the stock graph (`split_csp=False`) and yolo-compress's (CSP input
convolutions split). Reported: ONNX Split nodes, the layout reorders ONNX Runtime adds to its optimized graph
(ReorderInput/ReorderOutput: a convolution runs in its blocked NCHWc layout only when its input channels are a
multiple of the block, 16 with AVX-512, 8 with AVX2), and latency (batch 1, each file alone in its own process, the
files alternating over rounds, median), every speed-up against the unpruned stock export of the same yaml; with
`openvino=True` (the openvino extra) the same files compiled by OpenVINO for this CPU too.

Usage: python benchmarks/csp_export.py [models=yolo26n.yaml,yolo11n.yaml,yolov8n.yaml] [ratio=0.5[,R2...]]
       [round_to=16[,N2...]] [nc=5] [imgsz=320] [runs=100] [rounds=5] [openvino=False] [out=PATH.md]
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, cpu_line, key_value_args, publish  # noqa: E402
from yolo_compress.pruning.channel import ROUND_TO  # noqa: E402


def ort_ops(path: Path) -> Counter:
    """Op types of the graph ONNX Runtime runs after its optimizations (its layout reorders included)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)


def checkpoint(cfg: str, nc: int, ratio: float, imgsz: int, dest: Path, round_to: int = ROUND_TO) -> Path:
    """A random-init `cfg` detector with `nc` classes, pruned at `ratio` by `prune`'s defaults (widths rounded up to
    `round_to`), as a checkpoint."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_compress.pruning.channel import ChannelPruner
    from yolo_compress.pruning.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    model.args, model.names = get_cfg(), {i: f"class{i}" for i in range(nc)}
    if ratio:
        ChannelPruner(model, ratio, imgsz=imgsz, round_to=round_to).prune()
    return save_checkpoint(model, dest)


def prunings(ratio: str | float, round_to: str | int) -> list[tuple[str, float, int]]:
    """(row label, ratio, round_to) of the unpruned model and of each pruned variant asked for; one round_to applies
    to every ratio."""
    ratios, rounds = (list(v) if isinstance(v, (list, tuple)) else str(v).split(",") for v in (ratio, round_to))
    rounds = rounds * len(ratios) if len(rounds) == 1 else rounds
    if len(rounds) != len(ratios):
        raise ValueError(f"'round_to={round_to}' is invalid. Valid 'round_to' values are one integer or one per ratio "
                         f"({len(ratios)} here).")
    plain = {int(n) for n in rounds} == {ROUND_TO}
    pruned = [(f"pruned {float(r):g}" + ("" if plain else f" round_to {int(n)}"), float(r), int(n))
              for r, n in zip(ratios, rounds)]
    return [("unpruned", 0.0, ROUND_TO), *pruned]


def main(models: str = "yolo26n.yaml,yolo11n.yaml,yolov8n.yaml", ratio: str | float = 0.5,
         round_to: str | int = ROUND_TO, nc: int = 5, imgsz: int = 320, runs: int = 100, rounds: int = 5,
         openvino: bool = False, out: str | None = None) -> None:
    import onnx

    from yolo_compress import latency, measure

    work = ROOT / "csp_export"
    variants = prunings(ratio, round_to)
    command = (f"ratio={','.join(f'{r:g}' for _, r, _ in variants[1:])} "
               f"round_to={','.join(str(n) for _, _, n in variants[1:])}")
    work.mkdir(parents=True, exist_ok=True)
    files: dict[tuple[str, str, str], Path] = {}
    flops: dict[tuple[str, str], float] = {}
    for cfg in str(models).split(","):
        for label, r, n in variants:
            pt = checkpoint(cfg, nc, r, imgsz, work / f"{Path(cfg).stem}_{r:g}_{n}.pt", n)
            flops[cfg, label] = measure.gflops(measure.load_model(pt), imgsz)
            for export, split in (("stock", False), ("yolo-compress", True)):
                files[cfg, label, export] = measure.export_onnx(pt, imgsz, work / f"{pt.stem}_{export}.onnx", split)
    targets = {**{("ort", *k): str(v) for k, v in files.items()},
               **({("openvino", *k): latency.OPENVINO + str(v) for k, v in files.items()} if openvino else {})}
    ms = dict(zip(targets, latency.alone(list(targets.values()), imgsz, runs=runs, rounds=rounds)))
    runtimes = ["ort", "openvino"] if openvino else ["ort"]
    head = "".join(f" | {'ORT' if r == 'ort' else 'OpenVINO'} ms@{imgsz} | speed-up" for r in runtimes)
    lines = [f"| model | export | GFLOPs@{imgsz} | ONNX Split nodes | ORT layout reorders{head} |",
             "|---|---|---:|---:|---:" + "|---:|---:" * len(runtimes) + "|"]
    for (cfg, label, export), path in files.items():
        splits = sum(n.op_type == "Split" for n in onnx.load(str(path)).graph.node)
        ops = ort_ops(path)
        times = "".join(f" | {ms[r, cfg, label, export]:.2f} | "
                        f"{ms[r, cfg, 'unpruned', 'stock'] / ms[r, cfg, label, export]:.2f}x" for r in runtimes)
        lines.append(f"| {Path(cfg).stem} {label} | {export} | {flops[cfg, label]:.2f} | {splits} | "
                     f"{ops['ReorderInput'] + ops['ReorderOutput']}{times} |")
    lines += ["", f"CPU: {cpu_line()}. `python benchmarks/csp_export.py models={models} {command} nc={nc} "
              f"imgsz={imgsz} runs={runs} rounds={rounds} openvino={openvino}`: one run; each file alone in its own "
              f"process with its runtime's default options, median of {rounds} alternating rounds of {runs} runs."]
    publish(lines, Path(out) if out else work / "results.md")


if __name__ == "__main__":
    main(**key_value_args(sys.argv[1:]))
