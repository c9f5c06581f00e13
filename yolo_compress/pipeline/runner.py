"""Run a recipe's stages in order, each in its own process, resumable after a failure or a kill.

A stage is finished when its `stage.json` exists; a re-run skips finished stages, resumes a killed training from
its last.pt, and redoes any other unfinished stage from scratch. Each stage runs as a `yolo-compress` subprocess,
so a crash or out-of-memory in one stage cannot corrupt the pipeline's own state, and memory is returned between
stages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from ultralytics.utils import LOGGER, colorstr

from yolo_compress import checkpoints
from yolo_compress.cfg import ArgumentError, CommandFailed, resolve
from yolo_compress.files import alive
from yolo_compress.processes import child_env
from yolo_compress.pipeline.recipe import stage_command

LOCK = "pipeline.lock"  # pids of the runner and its running stage
STAGE_SHARED = {"train": ("data", "imgsz", "batch", "device", "workers"), "prune": ("data", "imgsz", "device"),
                "quantize": ("data", "imgsz")}


class StageFailed(CommandFailed):
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
        ckpt = checkpoints.load_dict(last)
    except checkpoints.CheckpointError:  # a kill during the checkpoint write truncates it
        return None
    return last if checkpoints.resumable(ckpt) else None


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
        command, Path(str(args.get("output"))))  # quantize stages always get an output (_stage_args)


def _planned(args: dict) -> dict:
    """Arguments as stored in JSON, so a re-run compares like with like."""
    return json.loads(json.dumps(args, default=str))


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold run_dir/pipeline.lock for this runner; refuse while the runner or stage named in it is still alive."""
    lock = run_dir / LOCK
    if lock.exists():
        busy = [int(p) for p in lock.read_text().split() if p.isdigit() and alive(int(p))]
        if busy:
            raise CommandFailed(f"{run_dir} is in use by process {busy[0]} (a pipeline or one of its stages); "
                                "wait for it to end or stop it, then run again.")
    lock.write_text(str(os.getpid()))
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _remove_stage(stage_dir: Path) -> None:
    """Remove a stage folder that must be redone, after checking it is one folder directly inside its run folder."""
    run_dir = stage_dir.parent
    if stage_dir.resolve().parent != run_dir.resolve() or not stage_dir.name.startswith("stage"):
        raise CommandFailed(f"refusing to remove {stage_dir}: not a stage folder of {run_dir}.")
    shutil.rmtree(stage_dir)


def check_inputs(recipe: dict[str, Any], run_dir: Path) -> None:
    """Refuse input files inside the run folder: a stage that is redone is removed with everything in it."""
    values = [("model", recipe.get("model")), ("data", recipe.get("data")), ("teacher", recipe.get("teacher"))]
    values += [("teacher_model", s[c].get("teacher_model")) for s in recipe["stages"] for c in (stage_command(s),)]
    for key, value in values:
        if isinstance(value, (str, Path)) and Path(str(value)).resolve().is_relative_to(run_dir.resolve()):
            raise ArgumentError(f"'{key}={value}' lies inside this pipeline's run folder {run_dir}, whose stages it may "
                                "redo and remove; copy it elsewhere or pass another name=.")


def _check_spec(command: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The stage's arguments against the command's spec; its files do not exist yet (earlier stages make them)."""
    return lambda args: resolve(command, args, check_files=False)


def check_stages(recipe: dict[str, Any]) -> None:
    """Every stage's arguments checked before the first stage runs: a bad value in stage 3 fails now, not after
    stage 1 trained for an hour."""
    from yolo_compress.trainer import check_train_args

    checks = {"train": check_train_args, "prune": _check_spec("prune"), "quantize": _check_spec("quantize")}
    for k, stage in enumerate(recipe["stages"], 1):
        command = stage_command(stage)
        args = {key: recipe[key] for key in STAGE_SHARED[command] if recipe.get(key) is not None}
        try:
            checks[command]({**args, **stage[command], "model": str(recipe["model"])})
        except (ValueError, SyntaxError, TypeError) as e:
            raise ArgumentError(f"stage {k} '{stage['name']}' ({command}): {' '.join(str(e).split())}") from e


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
            _remove_stage(stage_dir)  # a partial stage that cannot be resumed is redone from scratch
        stage_dir.mkdir(parents=True)
        plan.write_text(json.dumps(_planned(args), indent=2))
        run_args = args
    cfg = stage_dir.parent / f"{stage_dir.name}.args.yaml"
    cfg.write_text(yaml.safe_dump(run_args, sort_keys=False))
    child = subprocess.Popen([sys.executable, "-m", "yolo_compress.cli", command, f"cfg={cfg}"], env=child_env())
    lock = stage_dir.parent / LOCK
    lock.write_text(f"{os.getpid()} {child.pid}")
    try:
        returncode = child.wait()
    finally:
        if child.poll() is None:  # the runner itself is being stopped (e.g. Ctrl-C): stop the stage with it
            child.kill()
            child.wait()
        lock.write_text(str(os.getpid()))
    if returncode:
        raise StageFailed(
            f"stage '{stage_dir.name}' ({command}) failed with exit code {returncode} (its output is above). "
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
    check_inputs(recipe, run_dir)
    check_stages(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _run_lock(run_dir):
        _run_stages(recipe, run_dir)
    return run_dir


def _run_stages(recipe: dict[str, Any], run_dir: Path) -> None:
    """Run every unfinished stage of ``recipe`` in ``run_dir`` (the lock is held)."""
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
