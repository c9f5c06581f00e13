"""`yolo-compress SUBCOMMAND key=value ...`, parsed the way Ultralytics' `yolo` CLI parses its arguments."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from yolo_compress.cfg import SPEC, TRAIN_ARGS, CommandFailed, accepted, read_mapping
from yolo_compress.processes import die_with_parent_if_asked

# Sub-command -> "module:function"; the function takes the parsed arguments as a dict.
COMMANDS = {
    "train": "yolo_compress.trainer:train_command",
    "analyze": "yolo_compress.analysis:analyze_command",
    "compare": "yolo_compress.analysis:compare_command",
    "data": "yolo_compress.data.command:data_command",
    "pipeline": "yolo_compress.pipeline.command:pipeline_command",
    "report": "yolo_compress.report.build:report_command",
    "demo": "yolo_compress.demo:demo_command",
    "prune": "yolo_compress.pruning.command:prune_command",
    "suggest": "yolo_compress.pruning.suggest:suggest_command",
    "quantize": "yolo_compress.quantize.command:quantize_command",
    "auto": "yolo_compress.pipeline.auto:auto_command",
}
# Where bare (key-less) words go: a single value, or a list for names ending in "s".
POSITIONAL = {"analyze": "model", "compare": "models", "data": "action", "pipeline": "recipe", "report": "model", "quantize": "model"}

HELP = """yolo-compress: make Ultralytics YOLO detectors smaller and faster.

Usage: yolo-compress SUBCOMMAND [ARGS] key=value ...

  train    model=yolo26n.yaml data=data.yaml epochs=100 [compression arguments]   train through CompressionTrainer
  analyze  MODEL [threshold=1e-3] [imgsz=640] [plot=bn.png] [json=out.json]        params, GFLOPs, size, sparsity
  compare  A B [data=data.yaml] [imgsz=640] [runs=50] [json=out.json]              side-by-side table with ratios
  prune    model=best.pt pruning_ratio=0.3 [importance_metric=l1|l2|bn|taylor|random] [round_to=8] [global=False]
           [preserve_shortcuts=False] [shortcut_config=yolo26] [data=data.yaml] [imgsz=640]   pruned .pt + plan
           pruning_method=layer prune_blocks=N|target_flops=0.7 [data=data.yaml]       remove whole blocks
  suggest  model=best.pt [data=data.yaml] [target_flops=0.5] [max_map_drop=0.01]   sensitivity + plan.yaml for prune
  data     synth out=DIR [n_train=800] [n_val=200] [imgsz=160] [seed=0]            offline synthetic dataset
  pipeline RECIPE [model=...] [data=...] [imgsz=...] [epochs=...] [name=...]     multi-stage recipe + comparison
  auto     model=best.pt data=data.yaml target_flops=0.5|target_latency_ms=8 [max_map_drop=0.01] [epochs=10] [int8=True]
                                                                        smallest pruned(+INT8) model in budget
  report   MODEL|RUN_DIR [output=report.md|report.html|report.txt] [imgsz=640]  report with plots
  demo     [imgsz=160] [epochs=N] [project=runs/compress]                           the whole toolkit, offline
  quantize MODEL.pt data=data.yaml [int8=True] [half] [dynamic] [calibration=minmax] [format=onnx] [layout=auto] [debug]
                                                                                   INT8/FP16 ONNX + size/latency/mAP report
  cfg=recipe.yaml                                                                  run a YAML file (mode: train)
  help                                                                             this text

Training arguments (any Ultralytics train argument is accepted too):
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


def help_text() -> str:
    lines = [f"  {k:<20} default {SPEC[k]['default']!s:<10} {accepted(k)}: {SPEC[k].get('help', '')}" for k in TRAIN_ARGS]
    return HELP + "\n".join(lines)


def run(argv: list[str]) -> None:
    """Dispatch one command line (without the program name)."""
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(help_text())
        return
    command, rest = (argv[0], argv[1:]) if "=" not in argv[0] else ("train", argv)
    if command not in COMMANDS:
        raise ValueError(f"'{command}' is not a yolo-compress sub-command. Valid: {', '.join(COMMANDS)}, help.")
    args = parse(rest, POSITIONAL.get(command))
    if "cfg" in args:
        cfg = Path(str(args.pop("cfg")))
        if not cfg.is_file():
            raise FileNotFoundError(f"'cfg={cfg}' does not exist.")
        loaded = read_mapping(cfg, "cfg")
        mode = loaded.pop("mode", "train")
        if mode != "train":
            raise ValueError(f"'mode={mode}' in {cfg} is not supported by yolo-compress cfg=; use mode: train.")
        args = {**loaded, **args}
    module, func = COMMANDS[command].split(":")
    getattr(importlib.import_module(module), func)(args)


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
