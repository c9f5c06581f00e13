"""debug=True: which layers' INT8 outputs drift most from FP32, via ONNX Runtime's QDQ loss debugger."""

from __future__ import annotations

from pathlib import Path

from onnxruntime.quantization.qdq_loss_debug import (
    collect_activations,
    compute_activation_error,
    create_activation_matching,
    modify_model_output_intermediate_tensors,
)

from yolo_compress.files import scratch_dir
from yolo_compress.quantize.calibration import LetterboxReader


def layer_drift(fp32: Path, int8: Path, reader: LetterboxReader, images: int = 8, top: int = 10) -> list[dict]:
    """The `top` activations with the lowest signal-to-quantization-noise ratio (dB) between the INT8 model and
    FP32 on the same images; low SQNR = large drift."""
    with scratch_dir(int8.parent) as tmp:
        acts = {}
        for tag, path in (("fp32", fp32), ("int8", int8)):
            aug = tmp / f"{tag}.onnx"
            modify_model_output_intermediate_tensors(str(path), str(aug))
            reader.rewind(images)
            acts[tag] = collect_activations(str(aug), reader)
    errors = compute_activation_error(create_activation_matching(acts["int8"], acts["fp32"]))
    rows = [{"tensor": k, "sqnr_db": float(v["xmodel_err"])} for k, v in errors.items() if "xmodel_err" in v]
    return sorted(rows, key=lambda r: r["sqnr_db"])[:top]
