"""The sub-commands: one module per `yolo-compress` sub-command, each a `run(args)` on the `base` helpers.

A command checks its arguments once against its section of cfg/default.yaml (`cfg.resolve`), then calls the
library with explicit values. Modules are imported when their command runs, so `yolo-compress help` loads none.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from yolo_compress.cfg import COMMANDS


def module(name: str) -> ModuleType:
    """The module of sub-command `name` (yolo_compress/commands/<name>.py)."""
    return importlib.import_module(f"{__name__}.{name}")


def run(name: str, args: dict[str, Any]) -> Any:
    """Run sub-command `name` with its parsed `key=value` arguments."""
    return module(name).run(args)


__all__ = ["COMMANDS", "module", "run"]
