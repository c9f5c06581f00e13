"""Recipes: multi-stage compression pipelines described in one YAML file.

A recipe names an input model and data, then stages run in order; each stage is one yolo-compress sub-command
(`train`, `prune`, `quantize`) whose input model is the previous stage's artifact:

    name: three_stage
    model: yolo26n.pt
    data: coco8.yaml
    imgsz: 640
    stages:
      - {name: sparsity, train: {epochs: 100, l1_regularization: true, lambda_bn: 1.0e-4}}
      - {name: prune, prune: {pruning_ratio: 0.3, importance_metric: bn}}
      - {name: distill, train: {epochs: 50, distillation: true, teacher_model: input}}
      - {name: int8, quantize: {int8: true}}

`teacher_model: input` means the recipe's input model, `teacher` the recipe's `teacher` (the input model when the
recipe names none: self-distillation), and `stage:NAME` that stage's artifact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


from yolo_compress.cfg import ArgumentError, read_mapping

RECIPES_DIR = Path(__file__).resolve().parents[1] / "cfg" / "recipes"
STAGE_COMMANDS = ("train", "prune", "quantize")
SHARED = ("model", "data", "imgsz", "batch", "device", "workers")  # recipe-level keys every stage may use
TOP_KEYS = {"name", "stages", "project", "description", "teacher", *SHARED}
RECIPE_DEFAULTS = {"project": "runs/compress"}  # what a recipe that does not set it gets
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # becomes a folder name: no separator, no '..', no '.x'


def builtin_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def recipe_path(recipe: str | Path) -> Path:
    """A recipe file path, or the name of a built-in recipe (e.g. `three_stage`)."""
    path = Path(str(recipe))
    if path.is_file():
        return path
    found = builtin_recipes().get(str(recipe))
    if found:
        return found
    raise FileNotFoundError(
        f"'recipe={recipe}' is neither a file nor a built-in recipe. Built-in: {', '.join(builtin_recipes())}."
    )


def stage_command(stage: dict[str, Any]) -> str:
    (command,) = (k for k in stage if k in STAGE_COMMANDS)
    return command


def _cap_epochs(train: dict[str, Any], epochs: int) -> None:
    """Cap a train stage's epochs, moving prune_at_epoch proportionally so pruning still happens mid-training."""
    old = int(train.get("epochs", epochs))
    new = min(epochs, old)
    if train.get("pruning") and train.get("prune_at_epoch", 0) > 0:
        new = max(new, 2)  # prune at the start of an epoch >= 1, then train at least one more
        train["prune_at_epoch"] = max(1, min(new - 1, round(train["prune_at_epoch"] * new / old)))
    train["epochs"] = new


def load(recipe: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a recipe file (or built-in name); see `load_dict` for the overrides."""
    path = recipe_path(recipe)
    return load_dict({"name": path.stem, **read_mapping(path, "recipe")}, overrides, str(path))


def check_folder_name(value: Any, what: str) -> str:
    """A name that becomes one folder inside the run folder: refused if it could point anywhere else."""
    if not isinstance(value, str) or not FOLDER_NAME.fullmatch(value) or ".." in value:
        raise ArgumentError(f"{what} '{value}' is invalid. Valid names are letters, digits, '_', '-' and '.', "
                            "starting with a letter or digit (no '/' or '..').")
    return value


def load_dict(r: dict[str, Any], overrides: dict[str, Any] | None = None, source: str = "recipe") -> dict[str, Any]:
    """Check a recipe; `overrides` set recipe-level keys, and `epochs` caps every train stage."""
    overrides = dict(overrides or {})
    epochs = overrides.pop("epochs", None)
    unknown = set(overrides) - TOP_KEYS
    if unknown:
        raise ArgumentError(f"'{sorted(unknown)[0]}' is not a pipeline argument. Valid: {', '.join(sorted(TOP_KEYS))}, epochs.")
    r = {**r, **overrides}
    bad = set(r) - TOP_KEYS
    if bad:
        raise ArgumentError(f"{source}: unknown recipe key '{sorted(bad)[0]}'. Valid: {', '.join(sorted(TOP_KEYS))}.")
    if not r.get("stages"):
        raise ArgumentError(f"{source}: a recipe needs a non-empty 'stages' list.")
    names = set()
    for i, stage in enumerate(r["stages"]):
        commands = [k for k in stage if k in STAGE_COMMANDS]
        if len(commands) != 1 or set(stage) - {"name", *STAGE_COMMANDS}:
            raise ArgumentError(f"{source}: stage {i + 1} must have a 'name' and exactly one of {', '.join(STAGE_COMMANDS)}.")
        stage.setdefault("name", commands[0])
        check_folder_name(stage["name"], f"{source}: stage {i + 1} name")
        if stage["name"] in names:
            raise ArgumentError(f"{source}: two stages are named '{stage['name']}'; stage names must be unique.")
        names.add(stage["name"])
        stage[commands[0]] = dict(stage[commands[0]] or {})
        if epochs is not None and commands[0] == "train":
            _cap_epochs(stage["train"], int(epochs))
    check_folder_name(str(r["name"]), f"{source}: recipe name")
    for key in ("model", "data"):
        if not r.get(key):
            raise ArgumentError(f"'{key}' is required: set it in the recipe or pass {key}=... to the pipeline.")
    return {**RECIPE_DEFAULTS, **{k: v for k, v in r.items() if v is not None}}
