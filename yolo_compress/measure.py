"""Measurement core: parameters, GFLOPs, file size, CPU latency and mAP, for PyTorch models and ONNX files alike.

Every figure yolo-compress prints or documents goes through here, so all comparisons use one method. The latency of
files is taken by yolo_compress.latency (each file alone in its own process, as deployed; onnx_for exports a
checkpoint for it); `latency` here times targets A/B interleaved in this process, for PyTorch modules in memory.
"""

from __future__ import annotations

import shutil
import statistics
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from ultralytics.utils.torch_utils import get_flops

from yolo_compress import checkpoints
from yolo_compress.csp import split_csp_inputs
from yolo_compress.files import atomic_path, scratch_dir

Target = nn.Module | str | Path


def is_onnx(target: Any) -> bool:
    return isinstance(target, (str, Path)) and str(target).lower().endswith(".onnx")


def load_model(path: str | Path) -> nn.Module:
    """Load a .pt checkpoint as an FP32 eval-mode module (stock Ultralytics loader, no yolo-compress classes)."""
    return checkpoints.load(path)[0]


def count_params(model: nn.Module | str | Path) -> int:
    """Number of parameters; for an ONNX file, the number of weight values stored in its initializers."""
    if is_onnx(model):
        import onnx

        return int(sum(np.prod(t.dims) for t in onnx.load(str(model), load_external_data=False).graph.initializer))
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module, imgsz: int = 640) -> float:
    """GFLOPs of one forward pass at imgsz (Ultralytics' thop counting)."""
    return float(get_flops(model, imgsz))


def file_size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20


class _Runner:
    """One callable forward pass on a fixed input, for a torch module or an ONNX Runtime session."""

    def __init__(self, target: Target, imgsz: int, batch: int = 1):
        if is_onnx(target):
            import onnxruntime as ort

            opts = ort.SessionOptions()
            # Idle ORT threads spin for a while after each run and would steal the cores from the next target
            # in the interleaved loop; without spinning, A/B timings of the same file agree.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])
            inp = self.session.get_inputs()[0]
            dtype = np.float16 if "float16" in inp.type else np.float32
            self.feed = {inp.name: np.random.default_rng(0).random((batch, 3, imgsz, imgsz), dtype=np.float32).astype(dtype)}
            self.run = lambda: self.session.run(None, self.feed)
        else:
            model = load_model(target) if isinstance(target, (str, Path)) else target
            model = deepcopy(model).eval()
            model = model.fuse(verbose=False) if hasattr(model, "fuse") else model
            p = next(model.parameters())
            x = torch.rand(batch, 3, imgsz, imgsz, device=p.device, dtype=p.dtype)
            self.run = lambda: self._forward(model, x)

    @staticmethod
    @torch.inference_mode()
    def _forward(model: nn.Module, x: torch.Tensor) -> None:
        y = model(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        if isinstance(y, torch.Tensor):
            y.sum().item()  # waits for asynchronous devices without a device-specific synchronize call


def latency(targets: list[Target], imgsz: int = 640, runs: int = 50, warmup: int = 10, batch: int = 1) -> list[float]:
    """Median latency in ms of each target, timed A/B interleaved in one loop in this process (modules in memory;
    files as a deployed application runs them: yolo_compress.latency.alone)."""
    runners = [_Runner(t, imgsz, batch) for t in targets]
    for r in runners:
        for _ in range(warmup):
            r.run()
    times: list[list[float]] = [[] for _ in runners]
    for i in range(runs):
        order = range(len(runners)) if i % 2 == 0 else reversed(range(len(runners)))
        for j in order:
            t0 = time.perf_counter()
            runners[j].run()
            times[j].append((time.perf_counter() - t0) * 1000)
    return [statistics.median(t) for t in times]


def export_onnx(pt: Path, imgsz: int, dest: Path, split_csp: bool = True) -> Path:
    """FP32 ONNX through Ultralytics' own exporter (metadata, names, stride embedded), from a copy of the .pt so the
    input checkpoint and any file next to it are never written; `dest` appears only when complete. `split_csp`
    exports the CSP blocks' split input convolution as two (yolo_compress.csp: same outputs, fewer layout changes in
    ONNX Runtime); False gives the stock graph."""
    from ultralytics import YOLO

    with scratch_dir(dest.parent) as tmp:
        copy = tmp / Path(pt).name
        shutil.copy2(pt, copy)
        yolo = YOLO(str(copy))
        if split_csp:
            split_csp_inputs(yolo.model)
        out = Path(yolo.export(format="onnx", imgsz=imgsz, simplify=True, verbose=False))
        with atomic_path(dest) as part:
            shutil.copy2(out, part)
    return dest


def onnx_for(artifact: Path, imgsz: int, work_dir: Path, name: str) -> Path:
    """The artifact itself if ONNX, else its FP32 ONNX export at imgsz in work_dir (made once, then reused)."""
    if is_onnx(artifact):
        return Path(artifact)
    onnx = work_dir / f"{name}_{imgsz}.onnx"
    if not onnx.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        export_onnx(Path(artifact), imgsz, onnx)
    return onnx


def evaluate(model: str | Path, data: str, imgsz: int = 640, batch: int = 16, device: str | None = None) -> dict:
    """mAP50 and mAP50-95 through Ultralytics val, for a .pt or an .onnx file."""
    from ultralytics import YOLO

    metrics = YOLO(str(model), task="detect").val(
        data=data, imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False, save_json=False
    )
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}


def summarize(target: Target, imgsz: int = 640) -> dict:
    """Params, GFLOPs (PyTorch only: ONNX files carry no FLOP count) and file size of a model."""
    path = Path(target) if isinstance(target, (str, Path)) else None
    if is_onnx(target):
        return {"params": count_params(target), "gflops": None, "size_mb": file_size_mb(path)}
    model = load_model(path) if path else target
    return {
        "params": count_params(model),
        "gflops": gflops(model, imgsz),
        "size_mb": file_size_mb(path) if path else None,
    }
