"""A checkpoint is code: a hostile .pt must not run its payload in any command, whatever ULTRALYTICS_SAFE_LOAD says,
while every checkpoint the project and stock Ultralytics write still loads by default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from yolo_compress import checkpoints


class _Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def hostile(tmp_path) -> tuple[Path, Path]:
    """(hostile.pt, the marker file its payload would create)."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "hostile.pt"
    torch.save({"model": _Payload(marker), "train_args": {"imgsz": 64}, "epoch": -1}, path)
    return path, marker


def _commands(bad: Path, good: Path, data: Path, tmp: Path) -> dict[str, list[str]]:
    recipe = tmp / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": [{"name": "ft", "train": {"epochs": 1}}]}))
    out = [f"project={tmp / 'runs'}"]
    return {
        "analyze": ["analyze", bad],
        "compare": ["compare", good, bad],
        "prune": ["prune", f"model={bad}", "pruning_ratio=0.3", "imgsz=64", *out],
        "quantize": ["quantize", f"model={bad}", f"data={data}", f"output={tmp / 'q'}", *out],
        "train": ["train", f"model={bad}", f"data={data}", "epochs=1", "imgsz=64", *out],
        "teacher": ["train", f"model={good}", f"data={data}", "epochs=1", "imgsz=64", "distillation=True",
                    f"teacher_model={bad}", *out],
        "pipeline": ["pipeline", recipe, f"model={bad}", f"data={data}", "imgsz=64", *out],
        "auto": ["auto", f"model={bad}", f"data={data}", "target_flops=0.5", "imgsz=64", *out],
        "report": ["report", bad, f"output={tmp / 'report.md'}"],
    }


def test_hostile_checkpoint_runs_in_no_command(hostile, trained_pt, synth_data, tmp_path, cli):
    bad, marker = hostile
    for name, args in _commands(bad, trained_pt, synth_data, tmp_path).items():
        code, _, err = cli(*args)
        assert not marker.exists(), f"{name} ran the payload"
        assert code == 2, f"{name}: exit {code}"
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, f"{name}: {err[-800:]}"
        if name not in {"pipeline"}:  # a stage's own error line is printed by the stage above the runner's
            assert str(bad) in err, f"{name} names another file: {err}"


@pytest.mark.slow
@pytest.mark.parametrize("env", [None, "1"])
def test_safe_without_and_with_the_ultralytics_switch(hostile, env, tmp_path):
    bad, marker = hostile
    environ = {k: v for k, v in os.environ.items() if k != checkpoints.SAFE_ENV}
    if env is not None:
        environ[checkpoints.SAFE_ENV] = env
    for args in (["analyze", bad], ["quantize", f"model={bad}", f"output={tmp_path / 'q'}", "val=False"]):
        r = subprocess.run([sys.executable, "-m", "yolo_compress.cli", *map(str, args)], env=environ,
                           capture_output=True, text=True)
        assert r.returncode == 2 and not marker.exists(), r.stderr[-800:]
        assert f"{checkpoints.SAFE_ENV}=0" in r.stderr  # says how to opt in


def test_opting_out_unpickles_in_full(hostile, monkeypatch):
    bad, marker = hostile
    monkeypatch.setenv(checkpoints.SAFE_ENV, "0")
    assert checkpoints.trusted()
    try:
        with pytest.raises(Exception):  # the payload runs (the user trusted the file), then the dict is no model
            checkpoints.load(bad)
    finally:
        monkeypatch.undo()
        checkpoints.enforce_safe_load()  # restricted again for the rest of this process
    assert marker.exists()


def test_project_and_stock_checkpoints_load_by_default(trained_pt, tmp_path):
    from ultralytics import YOLO as StockYOLO

    from yolo_compress.commands.prune import run as prune_command

    assert os.environ[checkpoints.SAFE_ENV] == "1"  # importing yolo_compress turned restricted loading on
    stock = tmp_path / "stock.pt"
    StockYOLO("yolo26n.yaml").save(stock)
    pruned = prune_command({"model": str(trained_pt), "pruning_ratio": 0.3, "imgsz": 64,
                            "project": str(tmp_path), "name": "p"})
    for path in (trained_pt, stock, pruned):
        model, ckpt = checkpoints.load(path)
        assert sum(p.numel() for p in model.parameters()) > 0 and isinstance(ckpt, dict)
