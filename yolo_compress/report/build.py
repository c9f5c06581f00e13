"""`yolo-compress report MODEL|RUN_DIR output=report.md|report.html|report.txt`.

A report is a list of sections made of paragraphs, tables and images, rendered to one of three formats: Markdown
(plots beside it), HTML (plots embedded, one self-contained file) or plain text (plots beside it, named).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yolo_compress import analysis, measure
from yolo_compress.report import plots


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Image] = field(default_factory=list)


def _md(sections: list[Section], title: str, out: Path) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Table):
                lines += ["| " + " | ".join(b.headers) + " |", "|" + "---|" * len(b.headers)]
                lines += ["| " + " | ".join(map(str, r)) + " |" for r in b.rows]
            elif isinstance(b, Image):
                lines.append(f"![{b.caption}]({b.path.relative_to(out.parent).as_posix()})")
            else:
                lines.append(b)
            lines.append("")
    return "\n".join(lines)


def _html(sections: list[Section], title: str, out: Path) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
             "th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
             f"</style></head><body><h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Table):
                head = "".join(f"<th>{e(str(h))}</th>" for h in b.headers)
                body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(b, Image):
                data = base64.b64encode(b.path.read_bytes()).decode()
                parts.append(f"<figure><img alt='{e(b.caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{e(b.caption)}</figcaption></figure>")
            else:
                parts.append(f"<p>{e(b)}</p>")
    return "".join(parts) + "</body></html>"


def _txt(sections: list[Section], title: str, out: Path) -> str:
    lines = [title, "=" * len(title), ""]
    for s in sections:
        lines += [s.title, "-" * len(s.title)]
        for b in s.blocks:
            if isinstance(b, Table):
                cells = [list(map(str, b.headers))] + [list(map(str, r)) for r in b.rows]
                widths = [max(len(row[i]) for row in cells) for i in range(len(b.headers))]
                lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
            elif isinstance(b, Image):
                lines.append(f"[plot] {b.caption}: {b.path}")
            else:
                lines.append(b)
            lines.append("")
    return "\n".join(lines)


RENDERERS = {".md": _md, ".html": _html, ".txt": _txt}


def render(sections: list[Section], title: str, out: Path) -> Path:
    out.write_text(RENDERERS[out.suffix](sections, title, out), encoding="utf-8")
    return out


def _model_sections(path: Path, plot_dir: Path, imgsz: int, reference: Path | None = None) -> list[Section]:
    """Summary, sparsity, BatchNorm and (with a reference) per-layer channels of one checkpoint."""
    r = analysis.analyze(path, imgsz=imgsz)
    model = measure.load_model(path)
    summary = Table(["metric", "value"], [["model", path], ["parameters", f"{r['params']:,}"],
                                          [f"GFLOPs @{imgsz}", f"{r['gflops']:.3f}"], ["file size (MB)", f"{r['size_mb']:.2f}"]])
    top = sorted(r["layers"].items(), key=lambda kv: -kv[1])[:10]
    sparsity = Section("Sparsity analysis", [
        f"Weight sparsity (|w| < {r['threshold']:g}): {r['overall_sparsity']:.2%} of convolution weights; "
        f"channel sparsity (output channels whose every weight is below it): {r['channel_sparsity']:.2%}.",
        Table(["layer", "sparsity"], [[n, f"{s:.2%}"] for n, s in top]),
    ])
    models = {"reference": measure.load_model(reference), path.name: model} if reference else {path.name: model}
    hist = analysis.plot_bn_histogram(models, plot_dir / "bn_gamma_hist.png")
    bn = Section("BatchNorm analysis", [
        f"{r['bn_count']:,} BatchNorm channels, mean |gamma| {r['bn_mean_abs_gamma']:.4f}, "
        f"{r['bn_sparsity']:.2%} below 1e-2 (network-slimming sparsity).",
        Image(hist, "BatchNorm |gamma| distribution"),
    ])
    ratio = min(0.9, round(r["bn_sparsity"], 2))
    advice = (f"{r['bn_sparsity']:.0%} of BatchNorm gammas are below 1e-2, so 'importance_metric=bn pruning_ratio={ratio}' "
              "removes mostly near-silent channels; beyond that, prune with fine-tuning."
              if r["bn_sparsity"] >= 0.05 else
              "Few BatchNorm gammas are near zero: run sparsity training (l1_regularization=True lambda_bn=1e-3) before "
              "pruning with importance_metric=bn, or prune with importance_metric=l1 and fine-tune.")
    sections = [Section("Summary", [summary]), sparsity, bn]
    if reference:
        bars = plots.channels_before_after(measure.load_model(reference), model, plot_dir / "channels.png")
        sections.append(Section("Per-layer channels", [f"Reference: {reference}", Image(bars, "output channels per layer")]))
    sections.append(Section("Pruning suggestions", [advice]))
    return sections


def _run_sections(run_dir: Path, plot_dir: Path) -> list[Section]:
    """A pipeline run: stages, results table, accuracy-vs-latency, channels and BN of the last checkpoint."""
    results = json.loads((run_dir / "results.json").read_text())
    rows, imgsz = results["rows"], results["imgsz"]
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    table = Table(["stage", "params", "GFLOPs", "size (MB)", "ORT latency (ms)", "speed-up", "mAP50-95"],
                  [[r["stage"], f"{r['params']:,}", "-" if r["gflops"] is None else f"{r['gflops']:.3f}",
                    f"{r['size_mb']:.2f}", f"{r['latency_ms']:.2f}", f"{r['speedup']:.2f}x", f"{r['map50_95']:.4f}"]
                   for r in rows])
    scatter = plots.accuracy_vs_latency(rows, plot_dir / "accuracy_vs_latency.png")
    stages = [json.loads(p.read_text()) for p in sorted(run_dir.glob("stage*/stage.json"))]
    sections = [
        Section("Summary", [f"Recipe '{recipe['name']}' on {recipe['data']}, input model {recipe['model']}, imgsz {imgsz}.",
                            Table(["stage", "command", "seconds", "artifact"],
                                  [[s["stage"], s["command"], s["seconds"], s["artifact"]] for s in stages])]),
        Section("Results", [table, Image(scatter, "accuracy vs latency of every artifact")]),
    ]
    checkpoints = [Path(r["artifact"]) for r in rows if r["artifact"].endswith(".pt")]
    if checkpoints:
        ref = checkpoints[0] if len(checkpoints) > 1 else None
        sections += _model_sections(checkpoints[-1], plot_dir, imgsz, ref)[1:]
    for png in sorted(run_dir.glob("stage*/**/sensitivity*.png")):
        sections.append(Section("Sensitivity", [Image(png, f"sensitivity ({png.parent.name})")]))
    return sections


def build(target: str | Path, output: str | Path | None = None, imgsz: int = 640) -> Path:
    """Write the report of a checkpoint or of a pipeline run folder; returns its path."""
    target = Path(target)
    if not target.exists():
        raise FileNotFoundError(f"'model={target}' does not exist. Pass a .pt checkpoint or a pipeline run folder.")
    out = Path(output) if output else (target if target.is_dir() else target.parent) / "report.md"
    if out.suffix not in RENDERERS:
        raise ValueError(f"'output={out}' is invalid. Valid report outputs end in {', '.join(RENDERERS)}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_dir = out.parent / f"{out.stem}_plots"
    if target.is_dir():
        if not (target / "results.json").exists():
            raise FileNotFoundError(f"'{target}' has no results.json: pass a finished 'yolo-compress pipeline' run folder.")
        return render(_run_sections(target, plot_dir), f"yolo-compress report: {target.name}", out)
    return render(_model_sections(target, plot_dir, imgsz), f"yolo-compress report: {target.name}", out)
