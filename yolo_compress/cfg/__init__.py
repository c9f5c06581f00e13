"""yolo-compress arguments: defaults and validation, both read from default.yaml."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CFG_DIR = Path(__file__).parent
SPEC: dict[str, dict[str, Any]] = yaml.safe_load((CFG_DIR / "default.yaml").read_text())
DEFAULTS: dict[str, Any] = {k: s.get("default") for k, s in SPEC.items()}
# Entries without `commands` are training arguments (yolo-compress train, YOLO.train); the others belong to the
# sub-commands they list.
TRAIN_ARGS: tuple[str, ...] = tuple(k for k, s in SPEC.items() if "commands" not in s)


class ArgumentError(ValueError):
    """A bad argument: the message is one line naming the argument, the value and what is accepted."""


class CommandFailed(RuntimeError):
    """A step failed after its arguments were accepted (e.g. a pipeline stage); the message is one line."""


def read_mapping(path: str | Path, arg: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (recipe, cfg=, plan, shortcut config), refused in one line naming the
    argument when it is not valid YAML or not a mapping."""
    try:
        body = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        raise ArgumentError(f"'{arg}={path}' is not valid YAML: {' '.join(str(e).split())}") from e
    if not isinstance(body, dict):
        raise ArgumentError(f"'{arg}={path}' must be a YAML mapping (key: value lines), not a {type(body).__name__}.")
    return body


def accepted(name: str) -> str:
    """Describe in words what an argument accepts, for error messages and `yolo-compress help`."""
    s = SPEC[name]
    if "choices" in s:
        return "one of " + ", ".join(map(str, s["choices"]))
    kind = {"bool": "True or False", "int": "an integer", "float": "a number", "str": "a string", "path": "a file path"}
    text = kind[s["type"]]
    if "min" in s and "max" in s:
        lo = "(" if s.get("min_exclusive") else "["
        hi = ")" if s.get("max_exclusive") else "]"
        text += f" in {lo}{s['min']}, {s['max']}{hi}"
    elif "min" in s:
        text += f" {'>' if s.get('min_exclusive') else '>='} {s['min']}"
    elif "max" in s:
        text += f" {'<' if s.get('max_exclusive') else '<='} {s['max']}"
    return text


def unknown_argument(name: str, known: Iterable[str]) -> ArgumentError:
    """The error for an argument nobody accepts, with the closest known names as a hint."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ArgumentError(f"'{name}' is not a valid yolo-compress argument.{hint} See 'yolo-compress help'.")


def _invalid(name: str, value: Any) -> ArgumentError:
    return ArgumentError(f"'{name}={value}' is invalid. Valid '{name}' values are {accepted(name)}.")


def _cast(name: str, value: Any) -> Any:
    """Check one value against its spec and return it in its canonical type."""
    s, raw = SPEC[name], value
    kind = s["type"]
    if value is None and (kind == "path" or s.get("default") is None):
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(name, raw)
        return value
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise _invalid(name, raw)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(name, raw)
        value = float(value)
    if kind in {"str", "path"}:
        if not isinstance(value, (str, Path)):
            raise _invalid(name, raw)
        value = str(value)
    if "choices" in s and value not in s["choices"]:
        raise _invalid(name, raw)
    if "min" in s and (value < s["min"] or (s.get("min_exclusive") and value == s["min"])):
        raise _invalid(name, raw)
    if "max" in s and (value > s["max"] or (s.get("max_exclusive") and value == s["max"])):
        raise _invalid(name, raw)
    return value


def validate(args: dict[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """Return `args` cast to their types; raise ArgumentError on a name outside `allowed` or a bad value.

    Names in `allowed` that default.yaml does not describe (e.g. Ultralytics' own `model`, `imgsz`) pass unchanged.
    """
    allowed = set(allowed)
    out = {}
    for name, value in args.items():
        if name not in allowed:
            raise unknown_argument(name, allowed)
        out[name] = _cast(name, value) if name in SPEC else value
    return out
