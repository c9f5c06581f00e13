import pytest

from yolo_compress.cfg import ArgumentError
from yolo_compress.pipeline import recipe

SEED_RECIPES = {"l1_only", "pruning_only", "distillation_only", "two_stage", "three_stage", "aggressive", "gentle"}


def test_the_seven_seed_recipes_ship_and_load():
    assert SEED_RECIPES <= set(recipe.builtin_recipes())
    for name in SEED_RECIPES:
        r = recipe.load(name, {"model": "m.pt", "data": "d.yaml"})
        assert r["name"] == name and r["stages"]
        for stage in r["stages"]:
            assert recipe.stage_command(stage) in recipe.STAGE_COMMANDS


def test_epochs_override_caps_train_stages_and_keeps_pruning_inside():
    r = recipe.load("pruning_only", {"epochs": 4})
    train = r["stages"][0]["train"]
    assert train["epochs"] == 4 and 1 <= train["prune_at_epoch"] <= 3
    r = recipe.load("pruning_only", {"epochs": 1})
    assert r["stages"][0]["train"]["epochs"] == 2 and r["stages"][0]["train"]["prune_at_epoch"] == 1


def test_bad_recipes_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a built-in"):
        recipe.load("nope")
    with pytest.raises(ArgumentError, match="not a pipeline argument"):
        recipe.load("l1_only", {"lr0": 0.1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m.pt\ndata: d.yaml\nstages:\n  - {name: a, train: {}, prune: {}}\n")
    with pytest.raises(ArgumentError, match="exactly one of"):
        recipe.load(bad)
