import base64
import re

import cv2
import numpy as np
import pytest

from yolo_compress.report.build import build

SECTIONS = ("Summary", "Sparsity analysis", "BatchNorm analysis", "Pruning suggestions")


def _is_real_plot(png: bytes) -> bool:
    """Decodes as an image of plot size with enough ink on it to be a chart, not a blank canvas."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return img is not None and img.shape[0] > 300 and img.shape[1] > 500 and float((img < 200).mean()) > 0.01


def test_text_report_has_the_seed_sections(trained_pt, tmp_path):
    text = build(trained_pt, tmp_path / "r.txt", imgsz=64).read_text()
    for s in SECTIONS:
        assert f"\n{s}\n" in text
    assert "parameters" in text


def test_markdown_report_plots_exist_and_are_charts(trained_pt, tmp_path):
    md = build(trained_pt, tmp_path / "r.md", imgsz=64)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())
    assert images
    for rel in images:
        assert _is_real_plot((md.parent / rel).read_bytes())


def test_html_report_embeds_its_plots(trained_pt, tmp_path):
    html = build(trained_pt, tmp_path / "r.html", imgsz=64).read_text()
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert pngs and all(_is_real_plot(base64.b64decode(p)) for p in pngs)


def test_bad_output_and_missing_target(trained_pt, tmp_path):
    with pytest.raises(ValueError, match="'output=.*r.pdf' is invalid"):
        build(trained_pt, tmp_path / "r.pdf")
    with pytest.raises(FileNotFoundError):
        build(tmp_path / "missing.pt")
