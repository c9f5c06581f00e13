"""Int8 weight storage for the float head: same outputs within the int8 grid, a quarter of the bytes, no run-time cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from yolo_compress.quantize.graph import decode_tail, head_nodes
from yolo_compress.quantize.weight_storage import quantize_per_channel, store_conv_weights_int8


def _run(model: onnx.ModelProto, x: np.ndarray, optimized: Path | None = None) -> np.ndarray:
    opts = ort.SessionOptions()
    if optimized:
        opts.optimized_model_filepath = str(optimized)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_per_channel_grid_bounds_the_error():
    w = np.random.default_rng(0).normal(size=(8, 4, 3, 3)).astype(np.float32)
    w[3] = 0  # an all-zero channel must not divide by zero
    q, scale = quantize_per_channel(w)
    assert q.dtype == np.int8 and scale.shape == (8, 1, 1, 1)
    assert np.abs(q.astype(np.float32) * scale - w).max() <= scale.max() / 2 + 1e-7  # half a step at most
    assert np.abs(q).max() == 127 and not q[3].any()


def test_head_weights_stored_int8_outputs_kept_and_folded_at_load(trained_onnx, tmp_path):
    model = onnx.load(str(trained_onnx))
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    ref = _run(model, x)
    graph = model.graph
    before = model.ByteSize()
    converted = store_conv_weights_int8(model, head_nodes(graph) - decode_tail(graph))
    head_convs = [n for n in graph.node if n.op_type == "Conv" and n.name in head_nodes(graph) - decode_tail(graph)]
    assert converted == len(head_convs) > 0
    assert model.ByteSize() < before - 2.5 * sum(
        np.prod(t.dims) for t in graph.initializer if t.name.endswith("_int8"))  # 3 of 4 bytes saved per weight
    out = _run(model, x, optimized=tmp_path / "opt.onnx")
    # Boxes in pixels (rows 0-3) move by a fraction of a pixel; probabilities by a small fraction of their peak.
    assert np.abs(out[:, :4] - ref[:, :4]).max() < 0.5
    assert np.abs(out[:, 4:] - ref[:, 4:]).max() < 0.05 * ref[:, 4:].max() + 1e-6
    opt = onnx.load(str(tmp_path / "opt.onnx")).graph
    inits = {t.name for t in opt.initializer}
    convs = [n for n in opt.node if n.op_type in {"Conv", "FusedConv"}]
    # The rebuilt weights were constant-folded at load: every convolution sees an FP32 initializer, so ORT keeps its
    # blocked kernels (a run-time weight, e.g. from DequantizeLinear, would not be folded and would cost speed).
    assert convs and all(n.input[1] in inits for n in convs)
    assert not any(n.op_type == "Cast" for n in opt.node)


def test_shared_weights_are_left_float():
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 1, 1], [1.0, 0.5, -0.25, 2.0])
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="c1"), helper.make_node("Conv", ["a", "w"], ["y"], name="c2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])], [w])
    assert store_conv_weights_int8(helper.make_model(graph), {"c1", "c2"}) == 0
