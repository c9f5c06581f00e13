"""The comparison that ends a pipeline: every stage's artifact measured the same way, side by side.

Latency is ONNX Runtime CPU latency for every row (PyTorch checkpoints are exported to FP32 ONNX first), each file
timed alone in its own process, the files alternating over rounds (`latency.alone`), so the speed-ups compare like
with like, include the INT8 stage and are what a deployed application sees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ultralytics.utils import TQDM

from yolo_compress import latency, measure

COLUMNS = (
    ("stage", "stage", "{}"),
    ("params", "params", "{:,}"),
    ("gflops", "GFLOPs", "{:.3f}"),
    ("size_mb", "size (MB)", "{:.2f}"),
    ("latency_ms", "ORT latency (ms)", "{:.2f}"),
    ("speedup", "speed-up", "{:.2f}×"),
    ("map50_95", "mAP50-95", "{:.4f}"),
    ("map_delta", "ΔmAP50-95", "{:+.4f}"),
)


def measure_artifacts(
    stages: list[tuple[str, Path]], data: str, imgsz: int, work_dir: Path, runs: int = 100
) -> list[dict[str, Any]]:
    """Params, GFLOPs, size, ORT latency (each file alone) and mAP50-95 of each (stage, artifact); ratios vs the
    first."""
    rows, last_gflops = [], None
    for name, artifact in TQDM(stages, desc="measuring artifacts"):
        s = measure.summarize(artifact, imgsz)
        # An ONNX artifact (e.g. INT8) computes the same network as the checkpoint it came from.
        last_gflops = s["gflops"] if s["gflops"] is not None else last_gflops
        rows.append({"stage": name, "artifact": str(artifact), "params": s["params"], "gflops": last_gflops,
                     "size_mb": s["size_mb"], "onnx": str(measure.onnx_for(artifact, imgsz, work_dir, name)),
                     **measure.evaluate(artifact, data, imgsz=imgsz)})
    for row, ms in zip(rows, latency.alone([r["onnx"] for r in rows], imgsz=imgsz, runs=runs)):
        row["latency_ms"] = ms
    ref = rows[0]
    for row in rows:
        row["speedup"] = ref["latency_ms"] / row["latency_ms"]
        row["map_delta"] = row["map50_95"] - ref["map50_95"]
    return rows


INT8_MIN_SPEEDUP = 1.05  # an INT8 artifact that gains less than this over its FP32 model is not worth shipping (issue
# #20; NVIDIA ModelOpt keeps INT8 only when measured faster too)
INT8_MAX_MAP_DROP = 0.01  # default mAP50-95 an INT8 artifact may lose against its FP32 model (issue #20's 1.0 point)


def ship(quantized: dict[str, Any], fp32: dict[str, Any], max_map_drop: float | None) -> tuple[dict[str, Any], str]:
    """Which of an ONNX artifact and the FP32 checkpoint it was made from to deploy, and why: the quantized one only
    when it runs at least INT8_MIN_SPEEDUP times faster here and, unless `max_map_drop` is None, loses at most that
    much mAP50-95 (both rows measured by measure_artifacts). Speed alone is not enough: on YOLO26s at 320 ORT INT8
    ran 1.81x faster at -2.7 points (docs/quantization.md)."""
    gain = fp32["latency_ms"] / quantized["latency_ms"]
    if gain < INT8_MIN_SPEEDUP:
        return fp32, (f"{fp32['stage']}'s FP32 model: {quantized['stage']} runs at {gain:.2f}x its speed here "
                      f"(< {INT8_MIN_SPEEDUP}x), not worth shipping")
    if max_map_drop is not None and (drop := fp32["map50_95"] - quantized["map50_95"]) > max_map_drop:
        return fp32, (f"{fp32['stage']}'s FP32 model: {quantized['stage']} is {gain:.2f}x faster but loses "
                      f"{drop:.4f} mAP50-95 (> max_map_drop={max_map_drop})")
    return quantized, f"{quantized['stage']}: {gain:.2f}x faster than its FP32 model {fp32['stage']} here"


def final_choice(rows: list[dict[str, Any]], max_map_drop: float = INT8_MAX_MAP_DROP) -> dict[str, str] | None:
    """What a pipeline ends with: its last artifact, or, when that is an ONNX file made from the stage before (a
    quantize stage) that is not fast enough to pay or loses more than `max_map_drop` (ship), that stage's checkpoint.
    None for a pipeline of one row."""
    if len(rows) < 2:
        return None
    last, before = rows[-1], rows[-2]
    if not (measure.is_onnx(Path(last["artifact"])) and before["artifact"].endswith(".pt")):
        return {"stage": last["stage"], "artifact": last["artifact"], "why": "the last stage's artifact"}
    row, why = ship(last, before, max_map_drop)
    return {"stage": row["stage"], "artifact": row["artifact"], "why": why}


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" if key == "stage" else "---:" for key, _, _ in COLUMNS) + "|"
    body = [
        "| " + " | ".join("-" if r.get(k) is None else f.format(r[k]) for k, _, f in COLUMNS) + " |" for r in rows
    ]
    return "\n".join([head, sep, *body])


def write(run_dir: Path, rows: list[dict[str, Any]], imgsz: int, final: dict[str, str] | None = None) -> Path:
    """results.md (table) and results.json (rows, and `final`: what to deploy and why) in the run folder; returns
    results.md."""
    md = run_dir / "results.md"
    note = (f"Measured at imgsz={imgsz}; latency: ONNX Runtime CPU, batch 1, each file alone in its own process, "
            "median of 3 alternating rounds; "
            "speed-up and ΔmAP are relative to the first row.")
    ends = f"\n\nDeploy: `{final['artifact']}` ({final['why']}).\n" if final else "\n"
    md.write_text(f"# {run_dir.name}\n\n{to_markdown(rows)}\n\n{note}{ends}")
    (run_dir / "results.json").write_text(json.dumps({"imgsz": imgsz, "rows": rows, "final": final}, indent=2))
    return md
