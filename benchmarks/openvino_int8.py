"""Which NNCF settings make the fastest accurate OpenVINO INT8 model (issue #20).

From one FP32 ONNX export of MODEL and one set of calibration images (DATA's train split), builds an OpenVINO INT8
model per variant, then reports mAP50-95 on DATA's val split and latency, every model alone in its own process,
alternating over rounds (yolo_compress.latency), beside ONNX Runtime FP32 and OpenVINO at its default precision:
  example       preset MIXED, decode tail float, fast bias correction (NNCF's YOLO26 example)
  full_bc       the same with NNCF's full bias correction (what `quantize format=openvino` writes)
  example_head  example with the whole Detect head float
  example_perf  example with preset PERFORMANCE (symmetric activations)
Artifacts are written under OUT (a run folder outside the repository); a variant already built is reused.

Usage: python benchmarks/openvino_int8.py MODEL.pt DATA.yaml OUT [imgsz=320] [fraction=1.0] [runs=100] [rounds=5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_line, key_value_args  # noqa: E402

EXAMPLE = {"preset": "mixed", "fast_bias_correction": True, "float_head": False}
VARIANTS = {"example": EXAMPLE, "full_bc": {**EXAMPLE, "fast_bias_correction": False},
            "example_head": {**EXAMPLE, "float_head": True}, "example_perf": {**EXAMPLE, "preset": "performance"}}


def main(model: str, data: str, out: str, imgsz: int = 320, fraction: float = 1.0, runs: int = 100,
         rounds: int = 5) -> None:
    from yolo_compress import latency, measure
    from yolo_compress.quantize.calibration import calibration_reader
    from yolo_compress.measure import export_onnx
    from yolo_compress.quantize.openvino import quantize_openvino

    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        export_onnx(Path(model), imgsz, fp32)  # from a copy: nothing is written beside the user's file
    reader = calibration_reader(data, imgsz, fraction)
    built = {}
    for name, options in VARIANTS.items():
        dest = folder / f"int8_{name}_openvino_model"
        built[name] = dest if dest.exists() else quantize_openvino(fp32, dest, reader, **options)
    targets = {"ORT fp32": str(fp32), "OpenVINO default precision": latency.OPENVINO + str(fp32),
               **{f"OpenVINO int8 {k}": str(v) for k, v in built.items()}}
    ms = dict(zip(targets, latency.alone(list(targets.values()), imgsz=imgsz, runs=runs, rounds=rounds)))
    maps = {k: measure.evaluate(str(fp32) if k.startswith(("ORT", "OpenVINO default")) else v, data, imgsz)["map50_95"]
            for k, v in targets.items()}
    print(f"\nCPU: {cpu_line()}; {len(reader)} calibration images; imgsz {imgsz}; latency: each alone in its own "
          f"process, median of {rounds} alternating rounds of {runs} runs (`python benchmarks/openvino_int8.py "
          f"{model} {data} OUT imgsz={imgsz} fraction={fraction} runs={runs} rounds={rounds}`)\n")
    print("| artifact | ms | speed-up vs ORT fp32 | mAP50-95 | Δ (pt) |\n|---|---:|---:|---:|---:|")
    for k in targets:
        print(f"| {k} | {ms[k]:.2f} | {ms['ORT fp32'] / ms[k]:.2f}x | {maps[k]:.4f} | "
              f"{(maps[k] - maps['ORT fp32']) * 100:+.1f} |")


if __name__ == "__main__":
    words = [a for a in sys.argv[1:] if "=" not in a]
    main(*words, **key_value_args([a for a in sys.argv[1:] if "=" in a]))
