"""The user's images as the model sees them at validation: letterboxed to imgsz, no augmentation.

One loader for every step that feeds a model the user's own images outside training: BatchNorm re-estimation and
Taylor importance after pruning (train split, with labels), the sensitivity batch of `suggest` (val split) and INT8
calibration (train split). All go through Ultralytics' own dataset in val mode, so letterboxing and colour order are
exactly what `yolo val` and the exported model see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def dataset(data: str | Path, imgsz: int, split: str, fraction: float = 1.0, batch: int = 1, stride: int = 32,
            what: str = "images"):
    """Ultralytics' YOLODataset over `split` of `data` in val mode (LetterBox to imgsz, no augmentation), refused
    in one line naming `data` (and `what` the images are for) when the split is missing or holds no image."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data))
    if not info.get(split):
        raise ValueError(f"'data={data}' has no '{split}' split for {what}.")
    cfg = get_cfg(overrides={"imgsz": imgsz, "rect": False, "fraction": fraction, "task": "detect", "batch": batch,
                             "data": str(data), "augment": False, "mosaic": 0.0})
    try:
        ds = build_yolo_dataset(cfg, info[split], batch, info, mode="val", stride=stride, fraction=fraction)
    except FileNotFoundError as e:
        raise ValueError(f"'data={data}': no {what} in its '{split}' split ({info[split]}).") from e
    if len(ds) == 0:
        raise ValueError(f"'data={data}': no {what} in its '{split}' split ({info[split]}).")
    return ds


def first_images(ds: Any, n: int) -> np.ndarray:
    """The first `n` images of a dataset as float32 NCHW RGB in [0, 1]."""
    return np.stack([ds[i]["img"].numpy() for i in range(min(n, len(ds)))]).astype(np.float32) / 255.0
