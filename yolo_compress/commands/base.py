"""What every sub-command shares: its checked arguments and its run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.cfg import ArgumentError, check_path, command_spec, resolve

__all__ = ["ArgumentError", "check_path", "command_spec", "resolve", "run_folder", "refuse_overwrite"]


def run_folder(args: dict[str, Any]) -> Path:
    """``project/name``, numbered as Ultralytics numbers its runs unless ``exist_ok`` (not created here)."""
    from ultralytics.utils.files import increment_path

    return increment_path(Path(str(args["project"])) / str(args["name"]), exist_ok=bool(args["exist_ok"]))


def refuse_overwrite(src: str | Path, dst: Path, key: str = "model") -> None:
    """A command never writes over its own input."""
    if Path(dst).resolve() == Path(src).resolve():
        raise ArgumentError(f"'{key}={src}' would be overwritten by this run's output; choose another project/name.")
