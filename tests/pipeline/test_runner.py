import json
import os
import signal
import subprocess
import sys
import time

import torch
import yaml

from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline import runner


def _recipe(tmp_path, model, data, epochs=1, stages=2):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "model": str(model), "data": str(data), "imgsz": 64, "batch": 8, "project": str(tmp_path / "runs"),
        "stages": [{"name": f"ft{i}", "train": {"epochs": epochs, "plots": False}} for i in range(stages)],
    }))
    return path


def _mid_training_checkpoint(path, epochs: int) -> bool:
    """True once `path` holds a fully written checkpoint of an epoch before the last (a file still being written does
    not load; the final checkpoint has epoch -1)."""
    try:
        return 0 <= torch.load(path, map_location="cpu", weights_only=False)["epoch"] < epochs - 1
    except Exception:
        return False


def test_pipeline_chains_stages_skips_finished_ones_and_redoes_a_changed_one(trained_pt, synth_data, tmp_path):
    r = recipes.load(_recipe(tmp_path, trained_pt, synth_data))
    run_dir = runner.run(r)
    ft0 = json.loads((run_dir / "stage1_ft0" / "stage.json").read_text())
    ft1 = json.loads((run_dir / "stage2_ft1" / "stage.json").read_text())
    assert ft1["args"]["model"] == ft0["artifact"]  # each stage starts from the previous artifact
    best = [run_dir / f"stage{k}_ft{k - 1}" / "weights" / "best.pt" for k in (1, 2)]
    mtimes = [b.stat().st_mtime for b in best]
    runner.run(r)
    assert [b.stat().st_mtime for b in best] == mtimes  # finished stages are skipped

    r["stages"][1]["train"]["epochs"] = 2
    runner.run(r)
    assert best[0].stat().st_mtime == mtimes[0]  # the unchanged stage is kept
    rows = (run_dir / "stage2_ft1" / "results.csv").read_text().splitlines()
    assert len(rows) == 3  # header + the 2 epochs the recipe now asks for
    assert json.loads((run_dir / "stage2_ft1" / "stage.json").read_text())["args"]["epochs"] == 2


def test_killed_pipeline_resumes_the_interrupted_training(trained_pt, synth_data, tmp_path):
    path = _recipe(tmp_path, trained_pt, synth_data, epochs=3, stages=1)
    cmd = [sys.executable, "-m", "yolo_compress.cli", "pipeline", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = tmp_path / "runs" / "tiny" / "stage1_ft0" / "results.csv"
    last = results.parent / "weights" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not _mid_training_checkpoint(last, epochs=3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # a finished epoch is on disk: the kill lands in a later one
    proc.wait()
    assert results.exists(), "the first epoch never finished"
    assert not (results.parent / "stage.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming stage1_ft0" in r.stderr + r.stdout
    assert len(results.read_text().splitlines()) >= 4  # header + 3 epochs, the first not redone from scratch
    assert (results.parent / "stage.json").exists()
