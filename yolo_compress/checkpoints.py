"""Checkpoint trust: a .pt file is a pickle, and unpickling a pickle runs whatever code it names.

yolo-compress follows Ultralytics' own safe-load convention (`ULTRALYTICS_SAFE_LOAD`, `torch_safe_load`) but turns
it on by default: checkpoints are read with `torch.load(weights_only=True)` against Ultralytics' allow-list of
model classes, so a hostile file fails to load instead of running its payload. Ultralytics itself leaves the
switch off; yolo-compress sets it for its whole process (and so for every child process: pipeline stages, spawned
fine-tunes, DDP workers) when the package is imported. A user who trusts a legacy checkpoint that needs full
unpickling opts out with `ULTRALYTICS_SAFE_LOAD=0`.
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

from yolo_compress.cfg import ArgumentError

SAFE_ENV = "ULTRALYTICS_SAFE_LOAD"
OPT_OUT = {"0", "false", "no", "off"}


class CheckpointError(ArgumentError):
    """A checkpoint that cannot be loaded safely; the message is one line naming the argument and the file."""


def trusted() -> bool:
    """Whether the user opted into full unpickling (ULTRALYTICS_SAFE_LOAD=0)."""
    return os.environ.get(SAFE_ENV, "").strip().lower() in OPT_OUT


def enforce_safe_load() -> None:
    """Make restricted loading the default for this process and its children, unless the user opted out.

    Ultralytics reads the switch into module globals when imported, so those follow the environment too.
    """
    safe = not trusted()
    if safe:
        os.environ[SAFE_ENV] = "1"
    for name in ("ultralytics.utils", "ultralytics.nn.tasks"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "SAFE_LOAD"):
            module.SAFE_LOAD = safe


def _refused(arg: str, path: Path, error: Exception) -> CheckpointError:
    if "not a loadable checkpoint" in str(error) or not zipfile.is_zipfile(path):  # torch.save writes zip archives
        return CheckpointError(f"'{arg}={path}' is not a loadable checkpoint: the file is empty, truncated or not a "
                               "PyTorch .pt file.")
    return CheckpointError(
        f"'{arg}={path}' was not loaded: it holds objects outside the Ultralytics checkpoint format, and a .pt file "
        f"is code. If you trust this file, run again with {SAFE_ENV}=0 to unpickle it in full."
    )


def check_path(path: str | Path, arg: str = "model") -> Path:
    """The path of an existing .pt file, refused in one line otherwise."""
    p = Path(str(path))
    if p.suffix != ".pt":
        raise CheckpointError(f"'{arg}={path}' is invalid. Valid '{arg}' values are PyTorch checkpoints (.pt).")
    if not p.is_file():
        raise FileNotFoundError(f"'{arg}={path}' does not exist.")
    return p


def load_dict(path: str | Path, arg: str = "model") -> dict[str, Any]:
    """The checkpoint dictionary, loaded under the trust rules above."""
    from ultralytics.nn.tasks import torch_safe_load

    p = check_path(path, arg)
    try:
        return torch_safe_load(str(p), safe_only=not trusted())[0]
    except (TypeError, pickle.UnpicklingError, ModuleNotFoundError) as e:
        raise _refused(arg, p, e) from e


def resumable(ckpt: dict[str, Any]) -> bool:
    """Whether a checkpoint is a training run's last.pt that `resume=True` can continue (a finished run's weights
    are stripped: epoch -1, no optimizer)."""
    return ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None


def load(path: str | Path, device: Any = None, arg: str = "model") -> tuple[Any, dict[str, Any]]:
    """(FP32 eval-mode model, checkpoint dict) as Ultralytics' load_checkpoint returns them, under the trust rules."""
    from ultralytics.nn.tasks import load_checkpoint

    p = check_path(path, arg)
    enforce_safe_load()
    try:
        return load_checkpoint(str(p), device=device)
    except (TypeError, pickle.UnpicklingError, ModuleNotFoundError) as e:
        raise _refused(arg, p, e) from e
