"""format=openvino: OpenVINO INT8 through NNCF post-training quantization, decode tail kept in float.

Needs the optional extra (`pip install 'yolo-compress[openvino]'`); the folder written is what Ultralytics'
own OpenVINO export writes (<name>_openvino_model/ with model.xml/.bin and metadata.yaml), so YOLO(folder) loads it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import yaml

from yolo_compress.files import scratch_dir
from yolo_compress.quantize.calibration import LetterboxReader
from yolo_compress.quantize.graph import decode_tail, head_nodes


PRESETS = {"mixed": lambda nncf: nncf.QuantizationPreset.MIXED,
           "performance": lambda nncf: nncf.QuantizationPreset.PERFORMANCE}  # nncf is imported only when used


def require_openvino():
    """The openvino and nncf modules, or a one-line error saying how to install them."""
    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        raise ValueError(
            "'format=openvino' needs the optional extra: pip install 'yolo-compress[openvino]' (openvino, nncf)."
        ) from e
    return ov, nncf


def _metadata(fp32: Path) -> dict:
    """Ultralytics' metadata.yaml content from the ONNX metadata_props (values parsed back from their str form)."""
    props = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    return {k: (yaml.safe_load(v) if k in {"names", "imgsz", "stride", "batch", "channels"} else v) for k, v in props.items()}


def quantize_openvino(fp32: Path, dest: Path, reader: LetterboxReader, preset: str = "mixed",
                      fast_bias_correction: bool = False, float_head: bool = False) -> Path:
    """INT8 OpenVINO IR from the FP32 ONNX, calibrated on the same letterboxed images as the ONNX Runtime path.

    Defaults: NNCF's YOLO26 example (preset MIXED: symmetric weights, asymmetric activations; the decode tail kept
    float), but with NNCF's full bias correction (`fast_bias_correction=False`): on the vehicles YOLO26n at 320 it
    cost 0.3 points mAP50-95 against FP32 where the fast one cost 1.6, at the same speed (benchmarks/openvino_int8.py,
    docs/quantization.md). `float_head` keeps the whole Detect head float; `preset="performance"` makes activations
    symmetric too."""
    ov, nncf = require_openvino()
    graph = onnx.load(str(fp32), load_external_data=False).graph
    floating = head_nodes(graph) if float_head else decode_tail(graph)
    model = ov.convert_model(str(fp32))
    # OpenVINO names a converted op after its ONNX node or output tensor, a convolution "<node>/WithoutBiases" (its
    # bias becomes a separate Add): match all three.
    names = {op.get_friendly_name() for op in model.get_ops()}
    floating_outputs = {o for n in graph.node if n.name in floating for o in n.output}
    ignored = sorted(n for n in names if n in floating | floating_outputs or n.removesuffix("/WithoutBiases") in floating)
    dataset = nncf.Dataset(range(len(reader)), lambda i: reader.image(i))
    qmodel = nncf.quantize(
        model, dataset, preset=PRESETS[preset](nncf), subset_size=len(reader),
        fast_bias_correction=fast_bias_correction, ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with scratch_dir(dest.parent) as tmp:
        part = tmp / dest.name
        part.mkdir()
        ov.save_model(qmodel, str(part / f"{fp32.stem}.xml"))
        (part / "metadata.yaml").write_text(yaml.safe_dump(_metadata(fp32), sort_keys=False))
        if dest.exists():
            shutil.rmtree(dest)
        part.rename(dest)
    return dest
