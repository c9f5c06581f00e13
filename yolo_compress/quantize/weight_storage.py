"""Int8 storage for the weights of convolutions that compute in float (the float-head INT8 layout).

ONNX Runtime's static quantizer either quantizes a node's activations and weights together or leaves the node
wholly float (`nodes_to_exclude`); it has no option that stores only the weights of an excluded Conv as int8 (its
weight-only path, MatMulNBits, covers MatMul). Written here because without it the float head keeps FP32 weights,
which made YOLO26n's INT8 file 12% larger at 320 (2.88 vs 2.56 MB, docs/quantization.md).

The weight is rebuilt as `Cast(int8) * scale`, not with DequantizeLinear: ONNX Runtime's CPU session does not
constant-fold DequantizeLinear (it keeps it for QDQ fusion), so the Conv would get a run-time weight and lose its
blocked (NCHWc) kernels (YOLO26n at 320: 1.08x over FP32 instead of 1.24x, benchmarks/weight_storage.py); Cast and
Mul of initializers are folded once at session start, so the head runs as fast as with FP32 weights.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Symmetric int8 over [-127, 127]: the convolution computes in float, so the full 8 bits are safe even without VNNI
# (reduce_range guards the u8 x s8 integer kernels, which these weights never reach).
QMAX = 127


def quantize_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and one float scale per output channel, shaped to broadcast over the kernel (zero point 0)."""
    peak = np.abs(weight.reshape(len(weight), -1)).max(axis=1)
    scale = np.where(peak > 0, peak / QMAX, 1.0).astype(np.float32).reshape((-1,) + (1,) * (weight.ndim - 1))
    return np.clip(np.round(weight / scale), -QMAX, QMAX).astype(np.int8), scale


def store_conv_weights_int8(model: onnx.ModelProto, nodes: set[str]) -> int:
    """Replace the FP32 weight initializer of every Conv named in `nodes` by int8 storage, rebuilt in float.

    Weights shared with another node are left alone (their other consumer may expect float initializers).
    Returns how many convolutions were converted.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses = Counter(i for n in graph.node for i in n.input)
    restore: list[onnx.NodeProto] = []
    for node in graph.node:
        name = node.input[1] if node.op_type == "Conv" and node.name in nodes else ""
        tensor = inits.get(name)
        if tensor is None or tensor.data_type != TensorProto.FLOAT or uses[name] > 1:
            continue
        q, scale = quantize_per_channel(numpy_helper.to_array(tensor))
        graph.initializer.remove(tensor)
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"), numpy_helper.from_array(scale, f"{name}_scale")])
        restore.extend([
            helper.make_node("Cast", [f"{name}_int8"], [f"{name}_float"], name=f"{name}_Cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{name}_float", f"{name}_scale"], [name], name=f"{name}_Mul"),
        ])
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(restore + rest)  # before every consumer: the list stays topologically sorted
    return len(restore) // 2
