"""`yolo-compress SUBCOMMAND key=value ...`, parsed the way Ultralytics' `yolo` CLI parses its arguments."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from yolo_compress.cfg import COMMANDS, SECTIONS, CommandFailed, accepted, command_spec, read_mapping
from yolo_compress.processes import die_with_parent_if_asked

HELP = """yolo-compress: make Ultralytics YOLO detectors smaller and faster.

Usage: yolo-compress SUBCOMMAND [ARGS] key=value ...   (yolo-compress key=value ... trains; cfg=FILE.yaml reads a file)
       yolo-compress help [SUBCOMMAND]                   a sub-command's arguments, defaults and accepted values
"""


def parse(tokens: list[str], positional_key: str | None) -> dict[str, Any]:
    """`key=value` pairs to a dict with Ultralytics' value conversion; bare words to `positional_key`."""
    from ultralytics.cfg import smart_value  # here, not at the top: `yolo-compress help` must not pay for torch

    args, bare = {}, []
    for tok in tokens:
        if "=" in tok:
            k, v = tok.split("=", 1)
            if not k or not v:
                raise ValueError(f"'{tok}' is not a valid key=value argument: no {'key' if not k else 'value'}.")
            args[k.replace("-", "_")] = smart_value(v)
        else:
            bare.append(tok)
    if bare:
        if positional_key is None:
            raise ValueError(f"'{bare[0]}' is not a key=value argument. See 'yolo-compress help'.")
        if positional_key.endswith("s"):
            args[positional_key] = bare
        elif len(bare) > 1:
            raise ValueError(f"'{' '.join(bare)}': expected one {positional_key}, got {len(bare)}.")
        else:
            args[positional_key] = bare[0]
    return args


def help_text(command: str | None = None) -> str:
    """`yolo-compress help [COMMAND]`, generated from default.yaml."""
    if command is None:
        lines = [f"  {name:<9} {SECTIONS[name]['about']}\n  {'':<9} e.g. {SECTIONS[name]['usage']}" for name in COMMANDS]
        return HELP + "\nSub-commands:\n" + "\n".join(lines) + "\n\n" + help_text("train")
    if command not in COMMANDS:
        raise ValueError(f"'{command}' is not a yolo-compress sub-command. Valid: {', '.join(COMMANDS)}.")
    spec = command_spec(command)
    lines = [f"  {k:<20} default {s.get('default')!s:<14} {accepted(k, spec)}: {s.get('help', '')}"
             + (" (required)" if s.get("required") else "") for k, s in spec.items()]
    return (f"yolo-compress {command}: {SECTIONS[command]['about']}\n  e.g. {SECTIONS[command]['usage']}\n\n"
            f"Arguments:\n" + "\n".join(lines))


def run(argv: list[str]) -> None:
    """Dispatch one command line (without the program name)."""
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(help_text(argv[1] if len(argv) > 1 else None))
        return
    command, rest = (argv[0], argv[1:]) if "=" not in argv[0] else ("train", argv)
    if command not in COMMANDS:
        raise ValueError(f"'{command}' is not a yolo-compress sub-command. Valid: {', '.join(COMMANDS)}, help.")
    args = parse(rest, SECTIONS[command].get("positional"))
    if "cfg" in args:
        cfg = Path(str(args.pop("cfg")))
        if not cfg.is_file():
            raise FileNotFoundError(f"'cfg={cfg}' does not exist.")
        loaded = read_mapping(cfg, "cfg")
        mode = loaded.pop("mode", "train")
        if mode != "train":
            raise ValueError(f"'mode={mode}' in {cfg} is not supported by yolo-compress cfg=; use mode: train.")
        args = {**loaded, **args}
    from yolo_compress import commands

    commands.run(command, args)


def entrypoint() -> None:
    """Console script: an error prints one line and exits 2 (YOLO_COMPRESS_TRACEBACK=1 shows the traceback)."""
    die_with_parent_if_asked()
    try:
        run(sys.argv[1:])
    except (ValueError, FileNotFoundError, SyntaxError, TypeError, CommandFailed) as e:
        if os.environ.get("YOLO_COMPRESS_TRACEBACK") == "1":
            raise
        text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(e).split()))  # Ultralytics' messages carry colour codes
        print(f"yolo-compress: error: {text}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    entrypoint()
