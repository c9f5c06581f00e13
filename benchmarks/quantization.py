"""FP32 ONNX vs yolo-compress INT8 vs Ultralytics' own `quantize=8` INT8 export (and yolo-compress FP16 and
dynamic INT8): size, ORT latency, mAP50-95.

Usage (after benchmarks/train_quantize_models.py):
  YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/quantization.py [--imgsz 160 320] [--models yolo26n yolo11n] [--extras]
Each (model, imgsz) uses <root>/<model>_<imgsz>/weights/best.pt when it exists (a model fine-tuned at that size),
else <root>/<model>/weights/best.pt. Latency: the .onnx files of one (model, imgsz) timed interleaved in one loop
(yolo_compress.measure.latency). --extras adds yolo-compress FP16 and dynamic INT8 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics import YOLO

from yolo_compress.measure import evaluate, file_size_mb, latency
from yolo_compress.quantize.calibration import calibration_reader
from yolo_compress.quantize.cpu import describe
from yolo_compress.measure import export_onnx
from yolo_compress.quantize.onnx_quant import convert_fp16, quantize_int8, quantize_weights_dynamic


def checkpoint(root: Path, model: str, imgsz: int) -> Path:
    """The model fine-tuned at `imgsz` if train_quantize_models.py --finetune made one, else the base model."""
    tuned = root / f"{model}_{imgsz}" / "weights" / "best.pt"
    return tuned if tuned.exists() else root / model / "weights" / "best.pt"


def run_one(pt: Path, data: Path, imgsz: int, work: Path, fraction: float, runs: int, extras: bool) -> dict:
    """Build the three artifacts from copies of `pt` and measure them side by side."""
    ours_dir, ultra_dir = work / "ours", work / "ultralytics"
    for d in (ours_dir, ultra_dir):
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pt, d / "best.pt")
    fp32 = export_onnx(ours_dir / "best.pt", imgsz, ours_dir / "best.onnx")
    reader = calibration_reader(data, imgsz, fraction)
    accuracy = lambda f: evaluate(f, str(data), imgsz=imgsz, batch=1)["map50_95"]  # as `yolo-compress quantize` chooses
    ours, record = quantize_int8(fp32, ours_dir / "best_int8.onnx", reader, imgsz, accuracy=accuracy)
    ultra = Path(YOLO(str(ultra_dir / "best.pt")).export(format="onnx", quantize=8, data=str(data), imgsz=imgsz))
    paths = {"fp32": fp32, "yolo-compress int8": ours, "ultralytics quantize=8": ultra}
    if extras:
        paths["yolo-compress fp16"] = convert_fp16(fp32, ours_dir / "best_fp16.onnx")
        paths["yolo-compress dynamic int8"] = quantize_weights_dynamic(fp32, ours_dir / "best_dynamic_int8.onnx")
    times = dict(zip(paths, latency(list(paths.values()), imgsz=imgsz, runs=runs, warmup=10)))
    rows = {}
    for name, path in paths.items():
        m = evaluate(path, str(data), imgsz=imgsz, batch=1)
        rows[name] = {"size_mb": file_size_mb(path), "latency_ms": times[name], **m}
    return {"checkpoint": str(pt), "rows": rows, "int8_layouts_ms": {**record["layouts_ms"], "chosen": record["chosen"]},
            "int8_layouts_map50_95": record["layouts_accuracy"], "calibration_images": len(reader)}


def table(results: dict) -> str:
    lines = ["| model | imgsz | artifact | size MB | x smaller | ORT ms (median) | speed-up | mAP50 | mAP50-95 | Δ mAP50-95 (pt) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, res in results.items():
        model, imgsz = key.rsplit("@", 1)
        base = res["rows"]["fp32"]
        for name, r in res["rows"].items():
            lines.append(
                f"| {model} | {imgsz} | {name} | {r['size_mb']:.2f} | {base['size_mb'] / r['size_mb']:.2f}x | "
                f"{r['latency_ms']:.2f} | {base['latency_ms'] / r['latency_ms']:.2f}x | {r['map50']:.3f} | "
                f"{r['map50_95']:.3f} | {100 * (r['map50_95'] - base['map50_95']):+.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="runs/bench_quantize", help="output of train_quantize_models.py")
    parser.add_argument("--models", nargs="+", default=["yolo26n", "yolo11n"])
    parser.add_argument("--imgsz", nargs="+", type=int, default=[160, 320])
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction of the 800 train images for calibration")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--extras", action="store_true", help="also FP16 and dynamic INT8")
    opt = parser.parse_args()
    root = Path(opt.root).resolve()
    data = root / "data" / "data.yaml"
    results_path = root / "quantization_results.json"
    for model in opt.models:
        for imgsz in opt.imgsz:
            pt = checkpoint(root, model, imgsz)
            res = run_one(pt, data, imgsz, root / "quant" / f"{model}_{imgsz}", opt.fraction, opt.runs, opt.extras)
            # re-read before writing so that runs for other (model, imgsz) groups can share the file
            results = json.loads(results_path.read_text()) if results_path.exists() else {}
            results[f"{model}@{imgsz}"] = res
            results_path.write_text(json.dumps(results, indent=2))
    results = json.loads(results_path.read_text())
    print(f"CPU: {describe()}\n" + table(results))
    for key, res in results.items():
        print(f"{key}: INT8 layouts (median ms) {json.dumps(res['int8_layouts_ms'])}, mAP50-95 of the contenders "
              f"{json.dumps(res.get('int8_layouts_map50_95', {}))}, {res['calibration_images']} calibration images")


if __name__ == "__main__":
    main()
