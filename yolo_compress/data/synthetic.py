"""Offline, seeded YOLO-format detection dataset of coloured shapes on noisy backgrounds.

Nothing may be downloaded at run time, so tests, examples and the demo train on this instead of COCO. The task is
learnable but not trivial: shapes vary in size, colour, rotation and overlap, backgrounds carry noise and clutter.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import yaml

CLASSES = ("circle", "square", "triangle", "star", "cross")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour, so shapes stand out from the mid-grey noisy background."""
    hue = int(rng.integers(0, 180))
    hsv = np.uint8([[[hue, int(rng.integers(150, 256)), int(rng.integers(150, 256))]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _polygon(cls: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices of a square, triangle, star or cross centred on (cx, cy) with outer radius r."""
    if cls == 1:
        radii, n = [r] * 4, 4
    elif cls == 2:
        radii, n = [r] * 3, 3
    elif cls == 3:
        radii, n = [r, r * 0.45] * 5, 10
    else:
        w = r * 0.35
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
        c, s = math.cos(angle), math.sin(angle)
        return np.array([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts], np.float32)
    step = 2 * math.pi / n
    return np.array(
        [(cx + rad * math.cos(angle + i * step), cy + rad * math.sin(angle + i * step)) for i, rad in enumerate(radii)],
        np.float32,
    )


def _background(rng: np.random.Generator, size: int, noise: float) -> np.ndarray:
    """Smooth colour gradient plus Gaussian noise and a few faint lines as clutter."""
    base = rng.integers(40, 200, size=3)
    ramp = np.linspace(-30, 30, size, dtype=np.float32)
    img = np.empty((size, size, 3), np.float32)
    img[:] = base
    img += ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
    img += rng.normal(0, noise, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        grey = int(rng.integers(60, 200))
        cv2.line(img, tuple(map(int, p1)), tuple(map(int, p2)), (grey, grey, grey), 1)
    return img


def make_image(
    rng: np.random.Generator, size: int, max_objects: int, radius: tuple[float, float] = (0.06, 0.2), noise: float = 18.0
) -> tuple[np.ndarray, list[tuple]]:
    """One image and its labels as (cls, xc, yc, w, h), normalised; `radius` is the shapes' size range (of `size`)."""
    img = _background(rng, size, noise)
    labels = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(0, len(CLASSES)))
        r = float(rng.uniform(*radius) * size)
        cx, cy = (float(rng.uniform(r, size - r)) for _ in range(2))
        colour = _colour(rng)
        if cls == 0:
            cv2.circle(img, (round(cx), round(cy)), round(r), colour, -1, cv2.LINE_AA)
            x0, y0, x1, y1 = cx - r, cy - r, cx + r, cy + r
        else:
            pts = _polygon(cls, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour, cv2.LINE_AA)
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
        x0, y0, x1, y1 = (float(np.clip(v, 0, size)) for v in (x0, y0, x1, y1))
        labels.append((cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size))
    return img, labels


def make_dataset(
    out: str | Path,
    n_train: int = 800,
    n_val: int = 200,
    imgsz: int = 160,
    max_objects: int = 4,
    seed: int = 0,
    radius: tuple[float, float] = (0.06, 0.2),
    noise: float = 18.0,
) -> Path:
    """Write images/{train,val}, labels/{train,val} and data.yaml under `out`; return the data.yaml path.

    The same arguments always give byte-identical files (one generator per image, seeded by (seed, split, index)).
    Larger `radius` and lower `noise` make an easier task (the demo uses one, to converge in minutes).
    """
    out = Path(out).resolve()
    for name, value, low in (("n_train", n_train, 1), ("n_val", n_val, 1), ("imgsz", imgsz, 32), ("max_objects", max_objects, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"'{name}={value}' is invalid. Valid '{name}' values are integers >= {low}.")
    if not 0 < radius[0] <= radius[1] <= 0.5:
        raise ValueError(f"'radius={radius}' is invalid. Valid 'radius' values are (min, max) with 0 < min <= max <= 0.5.")
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            img, labels = make_image(rng, imgsz, max_objects, radius, noise)
            cv2.imwrite(str(out / "images" / split / f"{i:05d}.png"), img)
            lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
            (out / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}
    yaml_path = out / "data.yaml"
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return yaml_path
