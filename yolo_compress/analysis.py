"""`yolo-compress analyze` and `compare`: what a model is made of, and how two models differ.

Sparsity here is measured on the weights as they are (no masks): the fraction of convolution weights, output
channels and BatchNorm gammas whose magnitude is below a threshold. These are the numbers that tell whether sparsity
training worked and how much channel pruning can remove.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from yolo_compress import latency, measure

PRUNABLE = (nn.Conv2d, nn.Linear)


def _frac(x: torch.Tensor, threshold: float) -> float:
    return float((x.detach().abs() < threshold).float().mean()) if x.numel() else 0.0


def weight_sparsity(model: nn.Module, threshold: float = 1e-3) -> dict[str, Any]:
    """Fraction of convolution/linear weights below `threshold` in magnitude, overall and per layer."""
    layers, small, total = {}, 0, 0
    for name, m in model.named_modules():
        if isinstance(m, PRUNABLE):
            w = m.weight.detach()
            n = int((w.abs() < threshold).sum())
            layers[name] = n / w.numel()
            small, total = small + n, total + w.numel()
    return {"overall_sparsity": small / total if total else 0.0, "layers": layers}


def channel_sparsity(model: nn.Module, threshold: float = 1e-3) -> dict[str, Any]:
    """Fraction of conv output channels whose every weight is below `threshold`: channels pruning removes for free."""
    layers, dead, total = {}, 0, 0
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            peak = m.weight.detach().abs().flatten(1).amax(1)
            n = int((peak < threshold).sum())
            layers[name] = n / peak.numel()
            dead, total = dead + n, total + peak.numel()
    return {"channel_sparsity": dead / total if total else 0.0, "layers": layers}


def bn_gammas(model: nn.Module) -> torch.Tensor:
    """All BatchNorm scale factors of a model, concatenated."""
    gammas = [m.weight.detach().flatten() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return torch.cat(gammas).float() if gammas else torch.zeros(0)


def bn_stats(model: nn.Module, threshold: float = 1e-2) -> dict[str, float]:
    """Count, mean |gamma| and fraction of BatchNorm gammas below `threshold` (network-slimming readiness)."""
    g = bn_gammas(model)
    return {
        "bn_count": int(g.numel()),
        "bn_mean_abs_gamma": float(g.abs().mean()) if g.numel() else 0.0,
        "bn_sparsity": _frac(g, threshold),
    }


def plot_bn_histogram(models: dict[str, nn.Module], path: str | Path) -> Path:
    """Overlaid histograms of |gamma| (log x) for each labelled model, e.g. before vs after sparsity training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for label, model in models.items():
        g = bn_gammas(model).abs().clamp_min(1e-6).cpu().numpy()
        ax.hist(g, bins=np.logspace(-6, 1, 60), alpha=0.55, label=f"{label} (n={g.size})")
    ax.set_xscale("log")
    ax.set_xlabel("|BatchNorm gamma|")
    ax.set_ylabel("channels")
    ax.set_title("BatchNorm gamma distribution")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _onnx_weight_sparsity(path: str | Path, threshold: float) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    layers, small, total = {}, 0, 0
    for t in onnx.load(str(path)).graph.initializer:
        if len(t.dims) >= 2:
            w = numpy_helper.to_array(t).astype(np.float32)
            n = int((np.abs(w) < threshold).sum())
            layers[t.name] = n / w.size
            small, total = small + n, total + w.size
    return {"overall_sparsity": small / total if total else 0.0, "layers": layers}


def analyze(path: str | Path, threshold: float = 1e-3, bn_threshold: float = 1e-2, imgsz: int = 640) -> dict:
    """Everything `yolo-compress analyze` reports, as a dict."""
    result = {"model": str(path), "imgsz": imgsz, "threshold": threshold, **measure.summarize(path, imgsz)}
    if measure.is_onnx(path):
        return {**result, **_onnx_weight_sparsity(path, threshold)}
    model = measure.load_model(path)
    return {
        **result,
        **weight_sparsity(model, threshold),
        "channel_sparsity": channel_sparsity(model, threshold)["channel_sparsity"],
        **bn_stats(model, bn_threshold),
    }


def format_analysis(r: dict, top: int = 10) -> str:
    """A readable table of an analysis, with the most sparse layers."""
    gf = "-" if r.get("gflops") is None else f"{r['gflops']:.2f}"
    rows = [
        ("model", r["model"]),
        ("parameters", f"{r['params']:,}"),
        (f"GFLOPs @{r['imgsz']}", gf),
        ("file size (MB)", f"{r['size_mb']:.2f}"),
        (f"weight sparsity (|w|<{r['threshold']:g})", f"{r['overall_sparsity']:.2%}"),
    ]
    if "bn_count" in r:
        rows += [
            ("channel sparsity", f"{r['channel_sparsity']:.2%}"),
            ("BatchNorm layers' channels", f"{r['bn_count']:,}"),
            ("mean |BN gamma|", f"{r['bn_mean_abs_gamma']:.4f}"),
            ("BN gammas below threshold", f"{r['bn_sparsity']:.2%}"),
        ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    layers = sorted(r["layers"].items(), key=lambda kv: -kv[1])[:top]
    if layers:
        lines += ["", f"most sparse layers (top {len(layers)}):"] + [f"  {n:<40} {s:.2%}" for n, s in layers]
    return "\n".join(lines)


def compare(a: str | Path, b: str | Path, data: str | None = None, imgsz: int = 640, runs: int = 50) -> dict:
    """Params, GFLOPs, size, latency, FPS and (with data) mAP of two models, with B/A ratios.

    Latency is ONNX Runtime CPU latency, each file alone in its own process, the two alternating over rounds
    (latency.alone): a checkpoint is exported to FP32 ONNX first, in a temporary folder that is removed after."""
    rows = {}
    for key, target in (("a", a), ("b", b)):
        rows[key] = {"model": str(target), **measure.summarize(target, imgsz)}
    with tempfile.TemporaryDirectory(prefix="yolo_compress_compare_") as tmp:
        files = [measure.onnx_for(Path(t), imgsz, Path(tmp), k) for k, t in (("a", a), ("b", b))]
        lat = latency.alone([str(f) for f in files], imgsz=imgsz, runs=runs)
    for key, ms in zip(("a", "b"), lat):
        rows[key].update(latency_ms=ms, fps=1000 / ms)
        if data:
            rows[key].update(measure.evaluate(rows[key]["model"], data, imgsz=imgsz))
    ratios = {
        k: rows["b"][k] / rows["a"][k]
        for k in rows["a"]
        if k != "model" and rows["a"][k] and rows["b"].get(k) is not None
    }
    return {"imgsz": imgsz, "a": rows["a"], "b": rows["b"], "ratio_b_over_a": ratios}


def format_comparison(c: dict) -> str:
    """One table: metric, A, B, B/A."""
    fmt = {
        "params": "{:,.0f}",
        "gflops": "{:.2f}",
        "size_mb": "{:.2f}",
        "latency_ms": "{:.2f}",
        "fps": "{:.1f}",
        "map50": "{:.4f}",
        "map50_95": "{:.4f}",
    }
    names = {"params": "parameters", "gflops": f"GFLOPs @{c['imgsz']}", "size_mb": "file size (MB)",
             "latency_ms": "ORT latency (ms)", "fps": "FPS", "map50": "mAP50", "map50_95": "mAP50-95"}
    a, b, ratio = c["a"], c["b"], c["ratio_b_over_a"]
    lines = [f"A: {a['model']}", f"B: {b['model']}", "", f"{'metric':<22} {'A':>14} {'B':>14} {'B/A':>8}"]
    for k, f in fmt.items():
        if k not in a:
            continue
        va = "-" if a[k] is None else f.format(a[k])
        vb = "-" if b.get(k) is None else f.format(b[k])
        vr = f"{ratio[k]:.3f}" if k in ratio else "-"
        lines.append(f"{names[k]:<22} {va:>14} {vb:>14} {vr:>8}")
    return "\n".join(lines)
