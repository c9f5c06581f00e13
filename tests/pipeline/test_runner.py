import json
import os
import signal
import subprocess
import sys
import time

import torch
import yaml

from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline.command import run_and_compare


def _recipe(tmp_path, model, data, epochs=1, stages=2):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "model": str(model), "data": str(data), "imgsz": 64, "batch": 8, "project": str(tmp_path / "runs"),
        "stages": [{"name": f"ft{i}", "train": {"epochs": epochs, "plots": False}} for i in range(stages)],
    }))
    return path


def _complete_checkpoint(path, epoch: int) -> bool:
    """True once `path` holds a fully written checkpoint of `epoch` (a file still being written does not load)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["epoch"] == epoch
    except Exception:
        return False


def test_pipeline_chains_stages_writes_results_and_skips_finished(trained_pt, synth_data, tmp_path):
    r = recipes.load(_recipe(tmp_path, trained_pt, synth_data))
    run_dir, rows = run_and_compare(r, runs=5)
    assert [row["stage"] for row in rows] == ["input", "ft0", "ft1"]
    ft0 = json.loads((run_dir / "stage1_ft0" / "stage.json").read_text())
    ft1 = json.loads((run_dir / "stage2_ft1" / "stage.json").read_text())
    assert ft1["args"]["model"] == ft0["artifact"]  # each stage starts from the previous artifact
    assert "| ft1 |" in (run_dir / "results.md").read_text() and (run_dir / "report.md").exists()
    mtime = (run_dir / "stage2_ft1" / "weights" / "best.pt").stat().st_mtime
    run_and_compare(r, runs=5)
    assert (run_dir / "stage2_ft1" / "weights" / "best.pt").stat().st_mtime == mtime


def test_killed_pipeline_resumes_the_interrupted_training(trained_pt, synth_data, tmp_path):
    path = _recipe(tmp_path, trained_pt, synth_data, epochs=3, stages=1)
    cmd = [sys.executable, "-m", "yolo_compress.cli", "pipeline", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = tmp_path / "runs" / "tiny" / "stage1_ft0" / "results.csv"
    last = results.parent / "weights" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not _complete_checkpoint(last, epoch=0):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # epoch 1 is safely on disk: the kill lands in epoch 2
    proc.wait()
    assert results.exists(), "the first epoch never finished"
    assert not (results.parent / "stage.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming stage1_ft0" in r.stderr + r.stdout
    assert len(results.read_text().splitlines()) >= 4  # header + 3 epochs, the first not redone from scratch
    assert (results.parent / "stage.json").exists()
