"""Every built-in recipe runs to completion on tiny synthetic data and writes its results table."""

import json

import pytest

from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline.command import run_and_compare

SEED_RECIPES = ("l1_only", "pruning_only", "distillation_only", "two_stage", "three_stage", "aggressive", "gentle")


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_recipe_runs_to_completion(name, trained_pt, synth_data, tmp_path):
    r = recipes.load(name, {"model": str(trained_pt), "data": str(synth_data), "imgsz": 64, "batch": 8,
                            "project": str(tmp_path), "epochs": 1})
    for stage in r["stages"]:  # only the timing knobs are shrunk; the recipe's compression settings stay as shipped
        if "quantize" in stage:
            stage["quantize"].update(runs=3, val=False)
        if "train" in stage:
            stage["train"].update(plots=False)
    run_dir, rows = run_and_compare(r, runs=3)
    assert [row["stage"] for row in rows] == ["input"] + [s["name"] for s in r["stages"]]
    assert (run_dir / "results.md").exists() and (run_dir / "report.md").exists()
    assert json.loads((run_dir / "results.json").read_text())["rows"][-1]["map50_95"] >= 0
    if any("prune" in s or s.get("train", {}).get("pruning") for s in r["stages"]):
        assert rows[-1]["params"] < rows[0]["params"]  # pruning really removed parameters
