"""`quantize()`: one checkpoint in, deployment artifacts and a measured report out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER
from ultralytics.utils.files import increment_path

from yolo_compress import checkpoints
from yolo_compress.cfg import ArgumentError
from yolo_compress.files import atomic_path, clean_stale, scratch_dir
from yolo_compress import latency
from yolo_compress.csp import split_csp_inputs
from yolo_compress.measure import evaluate, export_onnx, file_size_mb, load_model
from yolo_compress.quantize.calibration import calibration_reader
from yolo_compress.quantize.cpu import describe as describe_cpu
from yolo_compress.quantize.onnx_quant import convert_fp16, quantize_int8, quantize_weights_dynamic


def checkpoint_imgsz(pt: Path) -> int:
    """The training image size stored in the checkpoint, the natural default for export and calibration; loading it
    first also refuses an unsafe or broken checkpoint under the user's own path, before any temporary copy exists."""
    ckpt = checkpoints.load_dict(pt)
    size = (ckpt.get("train_args") or {}).get("imgsz", 640)
    return int(max(size) if isinstance(size, (list, tuple)) else size)


def _check_output(output: str | Path | None) -> None:
    """`output` is a folder or a .onnx file; anything else (e.g. the input .pt) is refused, not made a folder."""
    if output is None:
        return
    out = Path(str(output))
    if out.suffix and out.suffix != ".onnx" and not out.is_dir():
        raise ArgumentError(f"'output={output}' is invalid. Valid 'output' values are a folder or a .onnx file.")


def destinations(pt: Path, output: str | Path | None, int8: bool, half: bool, dynamic: bool, format: str) -> dict[str, Path]:
    """Where each artifact goes. `output` is a folder, or a .onnx file that receives the main artifact (INT8, else
    FP16, else dynamic INT8; what a pipeline stage records), the others going beside it under the checkpoint's stem."""
    out = Path(output) if output else None
    folder = pt.parent if out is None else (out.parent if out.suffix == ".onnx" else out)
    paths = {
        "fp32": folder / f"{pt.stem}.onnx",
        "int8": folder / f"{pt.stem}_int8.onnx",
        "int8_openvino": folder / f"{pt.stem}_int8_openvino_model",
        "fp16": folder / f"{pt.stem}_fp16.onnx",
        "dynamic_int8": folder / f"{pt.stem}_dynamic_int8.onnx",
    }
    if out is not None and out.suffix == ".onnx":
        main = next(k for k, on in (("int8", int8 and format == "onnx"), ("fp16", half), ("dynamic_int8", dynamic)) if on)
        paths[main] = out
        if paths["fp32"] == out:
            paths["fp32"] = folder / f"{pt.stem}_fp32.onnx"
    return paths


def export_fp32(pt: Path, imgsz: int, dest: Path, csp: str, runs: int) -> tuple[Path, dict[str, Any]]:
    """The FP32 ONNX every other artifact derives from, with the CSP blocks' input convolution split (yolo_compress.csp)
    or stock. `csp="auto"` exports both and keeps the faster on this CPU (each timed alone, `latency.alone`): the split
    removes ONNX Runtime's layout changes around each block, which made YOLO26n faster and YOLO11n no faster where it
    was measured (docs/quantization.md), so it is timed per model rather than assumed."""
    if csp == "auto" and not split_csp_inputs(load_model(pt)):
        csp = "stock"  # no block to split: both exports would be the same graph
    if csp != "auto":
        return export_onnx(pt, imgsz, dest, split_csp=csp == "split"), {"csp": csp}
    with scratch_dir(dest.parent) as tmp:
        files = {k: export_onnx(pt, imgsz, tmp / f"{k}.onnx", split_csp=k == "split") for k in ("split", "stock")}
        ms = dict(zip(files, latency.alone(list(files.values()), imgsz, runs)))
        best = min(ms, key=ms.__getitem__)
        LOGGER.info(f"FP32 ONNX: CSP split {ms['split']:.2f} ms, stock {ms['stock']:.2f} ms (each alone); "
                    f"keeping {best}")
        with atomic_path(dest) as part:
            shutil.copy2(files[best], part)
    return dest, {"csp": best, "csp_ms": ms}


def quantize(
    model: str | Path,
    data: str | Path | None = None,
    imgsz: int | None = None,
    format: str = "onnx",
    int8: bool = True,
    half: bool = False,
    dynamic: bool = False,
    calibration: str = "minmax",
    per_channel: bool = True,
    fraction: float = 1.0,
    output: str | Path | None = None,
    val: bool = True,
    debug: bool = False,
    runs: int = 50,
    layout: str = "auto",
    csp: str = "auto",
    project: str | Path | None = None,
    name: str | None = None,
    exist_ok: bool = False,
) -> dict[str, Any]:
    """Export `model` to FP32 ONNX and the requested INT8/FP16 variants, then measure them against FP32.

    Artifacts go to the checkpoint's folder, or `output` (see `destinations`), as <stem>.onnx, <stem>_int8.onnx,
    <stem>_fp16.onnx, <stem>_dynamic_int8.onnx (or <stem>_int8_openvino_model/); the report to
    <project>/<name>/report.json (default runs/quantize/<stem>*/, numbered as Ultralytics numbers its runs).
    """
    pt = checkpoints.check_path(model)
    _check_output(output)
    if not (int8 or half or dynamic):
        raise ValueError("'int8=False half=False dynamic=False' selects nothing to produce; enable at least one.")
    if format == "openvino":
        from yolo_compress.quantize.openvino import require_openvino

        require_openvino()  # the missing-extra message before any work
    stored = checkpoint_imgsz(pt)  # loaded even when imgsz is given: the trust check comes first
    imgsz = imgsz or stored
    if format == "openvino" and output and Path(output).suffix == ".onnx" and not (half or dynamic):
        raise ValueError(f"'output={output}' is a .onnx file, but format=openvino writes a folder; pass a folder.")
    reader = calibration_reader(data, imgsz, fraction) if int8 else None  # fail on bad data before any export
    dest = destinations(pt, output, int8, half, dynamic, format)
    clean_stale(dest["fp32"].parent)  # what a killed run left in the output folder
    fp32, graph = export_fp32(pt, imgsz, dest["fp32"], csp, runs)
    artifacts: dict[str, Path] = {"fp32": fp32}
    info: dict[str, Any] = {"cpu": describe_cpu(), "imgsz": imgsz, "calibration": calibration,
                            "per_channel": per_channel, **graph}
    if int8 and format == "onnx":
        accuracy = (lambda f: evaluate(f, str(data), imgsz=imgsz, batch=1)["map50_95"]) if val else None
        artifacts["int8"], record = quantize_int8(
            fp32, dest["int8"], reader, imgsz, calibration, per_channel, runs=runs, debug=debug, accuracy=accuracy,
            layout=layout,
        )
        info["int8_layouts_ms"], info["int8_layout"] = record["layouts_ms"], record["chosen"]
        info["int8_layouts_map50_95"] = record["layouts_accuracy"]
        if debug:
            info["int8_drift"] = record["drift"]
        info["calibration_images"] = len(reader)
    if int8 and format == "openvino":
        from yolo_compress.quantize.openvino import quantize_openvino

        artifacts["int8_openvino"] = quantize_openvino(fp32, dest["int8_openvino"], reader)
    if half:
        artifacts["fp16"] = convert_fp16(fp32, dest["fp16"])
    if dynamic:
        artifacts["dynamic_int8"] = quantize_weights_dynamic(fp32, dest["dynamic_int8"])
    report = measure_artifacts(artifacts, data if val else None, imgsz, runs)
    report.update(info)
    save_dir = increment_path(Path(project or "runs/quantize") / (name or pt.stem), exist_ok=exist_ok, mkdir=True)
    (save_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    LOGGER.info(format_report(report) + f"\nReport saved to {save_dir / 'report.json'}")
    return report


def _size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*")) / 2**20 if path.is_dir() else file_size_mb(path)


def openvino_available() -> bool:
    """Whether OpenVINO can be imported here (the optional extra yolo-compress[openvino])."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def runtime_of(name: str) -> str:
    return "OpenVINO" if name.endswith("openvino") else "ONNX Runtime"


def measure_artifacts(artifacts: dict[str, Path], data: str | Path | None, imgsz: int, runs: int) -> dict[str, Any]:
    """Size, latency and, with data, mAP of each artifact. Latency: every artifact alone in its own process in its
    own runtime, alternating over rounds (`latency.alone`); with OpenVINO installed, the FP32 model is also timed in
    OpenVINO at its default precision for this CPU (row `fp32_openvino`, the same weights: its mAP is FP32's)."""
    targets = {k: str(p) for k, p in artifacts.items()}
    if openvino_available():
        targets["fp32_openvino"] = latency.OPENVINO + str(artifacts["fp32"])
    times = dict(zip(targets, latency.alone(list(targets.values()), imgsz=imgsz, runs=runs)))
    rows = {}
    for name, path in artifacts.items():
        row = {"path": str(path), "runtime": runtime_of(name), "size_mb": round(_size(path), 3),
               "latency_ms": times[name]}
        if data:
            row.update(evaluate(path, str(data), imgsz=imgsz, batch=1 if path.suffix == ".onnx" else 16))
        rows[name] = row
    # Not a file of its own: the FP32 ONNX in another runtime (report key `runtimes`, beside the artifacts).
    extra = {"fp32_openvino": {**rows["fp32"], "runtime": "OpenVINO", "latency_ms": times["fp32_openvino"]}} \
        if "fp32_openvino" in times else {}
    base = rows["fp32"]
    for row in (*rows.values(), *extra.values()):
        row["size_ratio"] = round(base["size_mb"] / row["size_mb"], 2)
        row["speedup"] = round(base["latency_ms"] / row["latency_ms"], 2)
        if "map50_95" in row:
            row["d_map50"] = row["map50"] - base["map50"]
            row["d_map50_95"] = row["map50_95"] - base["map50_95"]
    every = {**rows, **extra}
    return {"artifacts": rows, "runtimes": extra, "fastest": min(every, key=lambda k: every[k]["latency_ms"])}


def format_report(report: dict[str, Any]) -> str:
    """Plain-text table of the report, drift rows last."""
    lines = [f"{'artifact':<15}{'runtime':<14}{'size MB':>9}{'x smaller':>10}{'ms':>8}{'speedup':>9}{'mAP50':>8}"
             f"{'mAP50-95':>10}{'d mAP50-95':>12}"]
    every = {**report["artifacts"], **report["runtimes"]}
    for name, r in every.items():
        m50, m = (f"{r[k]:.3f}" if k in r else "-" for k in ("map50", "map50_95"))
        dm = f"{100 * r['d_map50_95']:+.1f} pt" if "d_map50_95" in r else "-"
        lines.append(f"{name:<15}{r['runtime']:<14}{r['size_mb']:>9.2f}{r['size_ratio']:>9.2f}x{r['latency_ms']:>8.2f}"
                     f"{r['speedup']:>8.2f}x{m50:>8}{m:>10}{dm:>12}")
    best = every[report["fastest"]]
    cost = f", {100 * best['d_map50_95']:+.1f} pt mAP50-95" if "d_map50_95" in best else ""
    lines.append(f"Fastest here: {report['fastest']} ({best['runtime']}), {best['latency_ms']:.2f} ms, "
                 f"{best['speedup']:.2f}x FP32 in ONNX Runtime{cost} (each artifact timed alone in its own process)")
    for d in report.get("int8_drift", []):
        lines.append(f"  drift  SQNR {d['sqnr_db']:7.2f} dB  {d['tensor']}")
    return "\n".join(lines)
