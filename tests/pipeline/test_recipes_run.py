"""Every built-in stage sequence runs to completion on tiny synthetic data; one also ends with the comparison.

The comparison is the same code whatever the stages were, so it runs once (on the recipe whose rows hold both .pt
and INT8 .onnx artifacts); the other recipes stop after their stages. `aggressive` is `three_stage` with other
numbers (its 0.5 pruning ratio is covered in tests/pruning), so only its shape is checked here.
"""

import json

import pytest

from yolo_compress import measure
from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline import runner
from yolo_compress.pipeline.compare import run_and_compare

SEED_RECIPES = ("l1_only", "pruning_only", "distillation_only", "two_stage", "three_stage", "aggressive", "gentle")


def _tiny(name, trained_pt, synth_data, tmp_path) -> dict:
    """The recipe with only the timing knobs shrunk; its compression settings stay as shipped."""
    r = recipes.load(name, {"model": str(trained_pt), "data": str(synth_data), "imgsz": 64, "batch": 8,
                            "project": str(tmp_path), "epochs": 1})
    for stage in r["stages"]:
        if "quantize" in stage:  # one layout, untimed: choosing among layouts is tested in tests/quantize
            stage["quantize"].update(runs=3, val=False, layout="all_u8s8")
        if "train" in stage:
            stage["train"].update(plots=False)
    return r


def _prunes(r: dict) -> bool:
    return any("prune" in s or s.get("train", {}).get("pruning") for s in r["stages"])


def _shape(name: str) -> list[tuple[str, str]]:
    return [(s["name"], recipes.stage_command(s)) for s in recipes.load(name)["stages"]]


def test_aggressive_has_the_stages_of_three_stage():
    assert _shape("aggressive") == _shape("three_stage")


@pytest.mark.parametrize("name", [n for n in SEED_RECIPES if n not in ("three_stage", "aggressive")])
def test_recipe_runs_to_completion(name, trained_pt, synth_data, tmp_path):
    r = _tiny(name, trained_pt, synth_data, tmp_path)
    run_dir = runner.run(r, r["project"])
    artifacts = [runner.artifact_of(run_dir, k, s) for k, s in enumerate(r["stages"], 1)]
    assert all(a.is_file() for a in artifacts)
    if _prunes(r):  # pruning really removed parameters
        assert measure.summarize(artifacts[-1], 64)["params"] < measure.summarize(trained_pt, 64)["params"]


def test_recipe_ends_with_a_side_by_side_comparison(trained_pt, synth_data, tmp_path):
    r = _tiny("three_stage", trained_pt, synth_data, tmp_path)
    run_dir, rows = run_and_compare(r, runs=3)
    assert [row["stage"] for row in rows] == ["input"] + [s["name"] for s in r["stages"]]
    assert (run_dir / "results.md").exists() and (run_dir / "report.md").exists()
    assert "| distill |" in (run_dir / "results.md").read_text()
    assert json.loads((run_dir / "results.json").read_text())["rows"][-1]["map50_95"] >= 0
    assert rows[-1]["params"] < rows[0]["params"] and rows[-1]["artifact"].endswith(".onnx")
    final = json.loads((run_dir / "results.json").read_text())["final"]  # INT8 only where it pays its way
    pays = rows[-2]["latency_ms"] >= 1.05 * rows[-1]["latency_ms"] and rows[-2]["map50_95"] - rows[-1]["map50_95"] <= 0.01
    assert final["stage"] == ("int8" if pays else "distill")
    assert f"Deploy: `{final['artifact']}`" in (run_dir / "results.md").read_text()
    int8 = run_dir / "stage4_int8"
    assert json.loads((int8 / "report.json").read_text())["int8_layout"] == "all_u8s8"  # the report stays in the stage
