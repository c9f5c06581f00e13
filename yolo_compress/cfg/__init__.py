"""yolo-compress arguments: defaults and validation, both read from default.yaml (a section per sub-command)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CFG_DIR = Path(__file__).parent
SECTIONS: dict[str, dict[str, Any]] = yaml.safe_load((CFG_DIR / "default.yaml").read_text())
COMMANDS: tuple[str, ...] = tuple(SECTIONS)  # the sub-commands, in the order `yolo-compress help` lists them
# The training arguments (yolo-compress train, YOLO.train): the compression arguments beside Ultralytics' own.
SPEC: dict[str, dict[str, Any]] = SECTIONS["train"]["args"]
DEFAULTS: dict[str, Any] = {k: s.get("default") for k, s in SPEC.items()}
TRAIN_ARGS: tuple[str, ...] = tuple(SPEC)


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


def accepted(name: str, spec: dict[str, dict[str, Any]] = SPEC) -> str:
    """Describe in words what an argument accepts, for error messages and `yolo-compress help`."""
    s = spec[name]
    if "suffix" in s:
        return "paths ending in " + ", ".join(s["suffix"])
    if "choices" in s:
        return "one of " + ", ".join(map(str, s["choices"]))
    kind = {"bool": "True or False", "int": "an integer", "float": "a number", "str": "a string", "path": "a file path",
            "list": "a list (two words, or comma-separated)", "any": "any value"}
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


def unknown_argument(name: str, known: Iterable[str], command: str = "") -> ArgumentError:
    """The error for an argument nobody accepts, with the closest known names as a hint."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    where = f"yolo-compress {command}" if command else "yolo-compress"
    return ArgumentError(f"'{name}' is not a valid {where} argument.{hint} See 'yolo-compress help {command}'."
                         .replace(" '.", "'."))


def _invalid(name: str, value: Any, spec: dict[str, dict[str, Any]]) -> ArgumentError:
    return ArgumentError(f"'{name}={value}' is invalid. Valid '{name}' values are {accepted(name, spec)}.")


def _cast(name: str, value: Any, spec: dict[str, dict[str, Any]] = SPEC) -> Any:
    """Check one value against its spec and return it in its canonical type."""
    s, raw = spec[name], value
    kind = s["type"]
    if value is None and (kind == "path" or s.get("default") is None):
        return None
    if kind == "any":
        return value
    if kind == "list":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise _invalid(name, raw, spec)
        return [str(v) for v in items if str(v)]
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(name, raw, spec)
        return value
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise _invalid(name, raw, spec)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(name, raw, spec)
        value = float(value)
    if kind in {"str", "path"}:
        if not isinstance(value, (str, Path)):
            raise _invalid(name, raw, spec)
        value = str(value)
    if "choices" in s and value not in s["choices"]:
        raise _invalid(name, raw, spec)
    if "min" in s and (value < s["min"] or (s.get("min_exclusive") and value == s["min"])):
        raise _invalid(name, raw, spec)
    if "max" in s and (value > s["max"] or (s.get("max_exclusive") and value == s["max"])):
        raise _invalid(name, raw, spec)
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


def command_spec(command: str) -> dict[str, dict[str, Any]]:
    """The arguments of one sub-command, as default.yaml describes them."""
    return SECTIONS[command]["args"]


def resolve(command: str, args: dict[str, Any], check_files: bool = True) -> dict[str, Any]:
    """A sub-command's arguments, checked once at its start: aliases resolved, unknown names refused with a hint,
    values cast and checked, required ones present and, with `check_files`, paths checked for their ending and
    existence. The result holds every argument of the command (its default when not given), so no code below the
    command needs a default of its own. A pipeline checks its stages with `check_files=False`: their models do not
    exist before the stage in front of them has run."""
    spec = command_spec(command)
    aliases = {s["alias"]: k for k, s in spec.items() if "alias" in s}
    out = {}
    for name, value in args.items():
        name = aliases.get(name, name)
        if name not in spec:
            raise unknown_argument(name, spec, command)
        out[name] = _cast(name, value, spec)
    for name, s in spec.items():
        out.setdefault(name, s.get("default"))
        if out[name] is None and s.get("required"):
            raise ArgumentError(f"'{name}' is required, e.g. '{SECTIONS[command]['usage']}'.")
        if check_files and s["type"] == "path" and out[name] is not None:
            check_path(name, out[name], s)
    return out


def check_path(name: str, value: str, s: dict[str, Any]) -> None:
    """A path argument's ending and existence, refused in one line naming the argument."""
    if "suffix" in s and Path(value).suffix.lower() not in s["suffix"]:
        raise ArgumentError(f"'{name}={value}' is invalid. Valid '{name}' values are paths ending in "
                            f"{', '.join(s['suffix'])}.")
    if s.get("exists") and not Path(value).exists():
        raise FileNotFoundError(f"'{name}={value}' does not exist.")
