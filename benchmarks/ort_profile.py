"""Where ONNX Runtime spends the time of an FP32 and an INT8 model (issue #20): op-time breakdown from ORT's profiler.

For each ONNX file: the graph ORT actually runs (after its optimizations: which Q/DQ pairs it fused into integer
kernels and which it left as separate QuantizeLinear/DequantizeLinear nodes), then `runs` profiled inferences at batch
1. Reported per op type and per model block (`/model.N/` in Ultralytics' exported names; N of the Detect head is the
last one, where the decode tail lives): time per inference and share. Each file is profiled alone in its own process
with ORT's default options, as deployed (yolo_compress.latency's method). Time shares under load are noisier than on
a quiet machine; run it with nothing else running.

Usage: python benchmarks/ort_profile.py FP32.onnx INT8.onnx [more.onnx] [imgsz=320] [runs=200] [out=PATH.md]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_line, key_value_args  # noqa: E402

# Run in a fresh interpreter per file: profile `runs` inferences, print {op: [us...]}, {block: us}, node counts.
CHILD = r"""
import json, sys, tempfile, collections, numpy as np, onnxruntime as ort, onnx
path, imgsz, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmp = tempfile.mkdtemp()
opts = ort.SessionOptions()
opts.optimized_model_filepath = tmp + "/optimized.onnx"
opts.enable_profiling = True
opts.profile_file_prefix = tmp + "/profile"
s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
inp = s.get_inputs()[0]
x = {inp.name: np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)}
for _ in range(runs):
    s.run(None, x)
events = json.load(open(s.end_profiling()))
graph = onnx.load(tmp + "/optimized.onnx", load_external_data=False).graph
print(json.dumps({"events": [(e["args"].get("op_name", ""), e["name"], e["dur"]) for e in events
                             if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")],
                  "nodes": collections.Counter(n.op_type for n in graph.node)}))
"""
BLOCK = re.compile(r"/model\.(\d+)/")


def profile(path: Path, imgsz: int, runs: int) -> dict:
    """Per-op and per-block time (ms per inference) and the optimized graph's node counts of one file."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(imgsz), str(runs)], capture_output=True,
                         text=True, check=True).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    ops: dict[str, float] = defaultdict(float)
    blocks: dict[str, float] = defaultdict(float)
    for op, name, us in raw["events"]:
        ops[op] += us / 1000 / runs
        m = BLOCK.search(name)
        blocks[f"model.{m.group(1)}" if m else "(no block)"] += us / 1000 / runs
    return {"ops": dict(ops), "blocks": dict(blocks), "nodes": raw["nodes"]}


def table(title: str, rows: dict[str, dict[str, float]], files: list[str], top: int) -> list[str]:
    """Markdown: ms per inference and share of each file's total, rows sorted by the largest time in any file."""
    totals = {f: sum(rows[f].values()) for f in files}
    keys = sorted({k for f in files for k in rows[f]}, key=lambda k: -max(rows[f].get(k, 0) for f in files))[:top]
    lines = [f"| {title} | " + " | ".join(f"{f} ms | share" for f in files) + " |",
             "|---|" + "---:|---:|" * len(files)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{rows[f].get(k, 0):.3f} | {rows[f].get(k, 0) / totals[f]:.1%}"
                                             for f in files) + " |")
    lines.append("| **sum of kernels** | " + " | ".join(f"{totals[f]:.3f} | 100%" for f in files) + " |")
    return lines


def main(files: list[str], imgsz: int = 320, runs: int = 200, out: str | None = None) -> None:
    names = [Path(f).name for f in files]
    results = {n: profile(Path(f), imgsz, runs) for n, f in zip(names, files)}
    counts = ["| node type in ORT's optimized graph | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    kinds = sorted({k for n in names for k in results[n]["nodes"]}, key=lambda k: -max(results[n]["nodes"].get(k, 0)
                                                                                      for n in names))
    counts += [f"| {k} | " + " | ".join(str(results[n]["nodes"].get(k, 0)) for n in names) + " |" for k in kinds]
    md = [f"CPU: {cpu_line()}; imgsz {imgsz}, batch 1, {runs} profiled runs per file, each file alone in its own "
          f"process (`python benchmarks/ort_profile.py {' '.join(files)} imgsz={imgsz} runs={runs}`).", "",
          *table("op type", {n: results[n]["ops"] for n in names}, names, 20), "",
          *table("block", {n: results[n]["blocks"] for n in names}, names, 30), "", *counts]
    print("\n".join(md))
    if out:
        with tempfile.NamedTemporaryFile("w", dir=Path(out).parent, delete=False) as f:
            f.write("\n".join(md) + "\n")
        Path(f.name).replace(out)


if __name__ == "__main__":
    words = [a for a in sys.argv[1:] if "=" not in a]
    main(words, **key_value_args([a for a in sys.argv[1:] if "=" in a]))
