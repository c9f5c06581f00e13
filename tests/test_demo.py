"""`yolo-compress demo`: its recipe is the README's promise (3-stage recipe plus INT8, at the documented size)."""

from pathlib import Path

import pytest

from yolo_compress.cfg import ArgumentError
from yolo_compress.commands.demo import demo_recipe
from yolo_compress.commands.demo import run as demo_command
from yolo_compress.pipeline import recipe as recipes


def test_demo_runs_the_three_stage_recipe_plus_int8(tmp_path):
    recipe = recipes.load_dict(demo_recipe(tmp_path, tmp_path / "data.yaml", 128), {"epochs": 1})
    stages = [(s["name"], next(k for k in s if k != "name")) for s in recipe["stages"]]
    assert stages == [("baseline", "train"), ("sparsity", "train"), ("prune", "prune"), ("distill", "train"),
                      ("int8", "quantize")]
    sparsity, prune, distill = (recipe["stages"][i] for i in (1, 2, 3))
    assert sparsity["train"]["lambda_bn"] > 0 and prune["prune"]["importance_metric"] == "bn"
    assert distill["train"]["distillation"] and distill["train"]["teacher_model"] == "stage:baseline"
    assert all(s["train"]["epochs"] == 1 for s in recipe["stages"] if "train" in s)  # epochs= caps every training


def test_demo_rejects_unknown_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="lr0"):
        demo_command({"lr0": 0.1, "project": str(tmp_path)})
    assert not list(Path(tmp_path).iterdir())  # refused before any file is written
