"""Run a recipe's stages in order, each in its own process, resumable after a failure or a kill.

A stage is finished when its `stage.json` exists; a re-run skips finished stages, resumes a killed training from
its last.pt, and redoes any other unfinished stage from scratch. Each stage runs as a `yolo-compress` subprocess,
so a crash or out-of-memory in one stage cannot corrupt the pipeline's own state, and memory is returned between
stages.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.patches import torch_load

from yolo_compress.pipeline.recipe import stage_command

STAGE_SHARED = {"train": ("data", "imgsz", "batch", "device", "workers"), "prune": ("data", "imgsz", "device"),
                "quantize": ("data", "imgsz")}


class StageFailed(RuntimeError):
    """A stage exited non-zero; finished stages are kept and a re-run resumes after them."""


def _resolve_refs(args: dict[str, Any], artifacts: dict[str, Path], teacher: str | None) -> dict[str, Any]:
    """Replace `input` / `teacher` / `stage:NAME` values of model-valued arguments by paths."""
    out = dict(args)
    for key in ("teacher_model",):
        value = out.get(key)
        if value == "teacher":
            out[key] = str(teacher or artifacts["input"])
        elif value == "input":
            out[key] = str(artifacts["input"])
        elif isinstance(value, str) and value.startswith("stage:"):
            name = value.split(":", 1)[1]
            if name not in artifacts:
                raise StageFailed(f"'{key}={value}' names a stage that has not run before this one.")
            out[key] = str(artifacts[name])
    return out


def _train_resume_point(stage_dir: Path) -> Path | None:
    """last.pt of a killed training that can be resumed, else None."""
    last = stage_dir / "weights" / "last.pt"
    if not last.exists():
        return None
    try:
        ckpt = torch_load(str(last), map_location="cpu")
    except (EOFError, RuntimeError, pickle.UnpicklingError):  # a kill during the checkpoint write truncates it
        return None
    return last if ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None else None


def _stage_args(command: str, stage: dict, recipe: dict, stage_dir: Path, model: Path, artifacts: dict) -> dict:
    args = {k: recipe[k] for k in STAGE_SHARED[command] if recipe.get(k) is not None}
    args.update(_resolve_refs(stage[command], artifacts, recipe.get("teacher")))
    args["model"] = str(model)
    if command == "quantize":
        args["output"] = str(stage_dir / f"{stage['name']}.onnx")
    args.update(project=str(stage_dir.parent), name=stage_dir.name, exist_ok=True)  # logs and reports in the stage
    return args


def _artifact(command: str, args: dict, stage_dir: Path) -> Path:
    return {"train": stage_dir / "weights" / "best.pt", "prune": stage_dir / "weights" / "pruned.pt"}.get(
        command, Path(args.get("output", "")))


def _planned(args: dict) -> dict:
    """Arguments as stored in JSON, so a re-run compares like with like."""
    return json.loads(json.dumps(args, default=str))


def _run_stage(command: str, args: dict, stage_dir: Path, resumable: bool) -> None:
    """Write the stage's arguments next to it and run them through the CLI in a child process.

    A killed training resumes only if its input is unchanged (`resumable`) and the recipe still asks for the same
    arguments; otherwise it is redone from scratch.
    """
    plan = stage_dir / "stage_args.json"
    same = resumable and plan.exists() and json.loads(plan.read_text()) == _planned(args)
    resume = _train_resume_point(stage_dir) if command == "train" and same else None
    if resume:
        LOGGER.info(f"{colorstr('pipeline:')} resuming {stage_dir.name} from {resume}")
        run_args = {"model": str(resume), "resume": True}
    else:
        if stage_dir.exists():
            shutil.rmtree(stage_dir)  # a partial stage that cannot be resumed is redone from scratch
        stage_dir.mkdir(parents=True)
        plan.write_text(json.dumps(_planned(args), indent=2))
        run_args = args
    cfg = stage_dir.parent / f"{stage_dir.name}.args.yaml"
    cfg.write_text(yaml.safe_dump(run_args, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "yolo_compress.cli", command, f"cfg={cfg}"])
    if r.returncode:
        raise StageFailed(
            f"stage '{stage_dir.name}' ({command}) failed with exit code {r.returncode} (its output is above). "
            f"Finished stages are kept in {stage_dir.parent}; run the same command again to resume."
        )


def _finished(marker: Path, args: dict) -> bool:
    """A stage counts as done only if it finished with the arguments the recipe asks for now."""
    if not marker.exists():
        return False
    if json.loads(marker.read_text())["args"] == _planned(args):
        return True
    LOGGER.info(f"{colorstr('pipeline:')} the recipe changed for {marker.parent.name}: redoing it and the stages after it")
    return False


def artifact_of(run_dir: Path, k: int, stage: dict[str, Any]) -> Path:
    """The artifact a finished stage recorded in its stage.json."""
    return Path(json.loads((run_dir / f"stage{k}_{stage['name']}" / "stage.json").read_text())["artifact"])


def run(recipe: dict[str, Any], project: str | Path = "runs/compress") -> Path:
    """Run every unfinished stage; return the run folder holding stageK_NAME/ folders and stage.json markers."""
    run_dir = (Path(project) / recipe["name"]).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    artifacts = {"input": Path(recipe["model"])}
    model = artifacts["input"]
    redo = False  # once a stage is (re)done, every later stage's input has changed
    for k, stage in enumerate(recipe["stages"], 1):
        command = stage_command(stage)
        stage_dir = run_dir / f"stage{k}_{stage['name']}"
        marker = stage_dir / "stage.json"
        args = _stage_args(command, stage, recipe, stage_dir, model, artifacts)
        if not redo and _finished(marker, args):
            model = artifact_of(run_dir, k, stage)
            LOGGER.info(f"{colorstr('pipeline:')} stage {k} '{stage['name']}' already finished: {model}")
        else:
            LOGGER.info(f"{colorstr('pipeline:')} stage {k}/{len(recipe['stages'])} '{stage['name']}' ({command})")
            t0 = time.time()
            _run_stage(command, args, stage_dir, resumable=not redo)
            model = _artifact(command, args, stage_dir)
            if not model.exists():
                raise StageFailed(f"stage '{stage_dir.name}' finished but wrote no artifact at {model}.")
            info = {"stage": stage["name"], "command": command, "args": _planned(args), "artifact": str(model),
                    "seconds": round(time.time() - t0, 1)}
            marker.write_text(json.dumps(info, indent=2))
            redo = True
        artifacts[stage["name"]] = model
    return run_dir
