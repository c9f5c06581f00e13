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


def _write(path, body):
    path.write_text(yaml.safe_dump(body) if isinstance(body, dict) else body)
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("yolo-compress: error:")]
    assert lines and "Traceback" not in err, err[-2000:]
    return lines[-1]


def test_a_stage_name_cannot_reach_outside_the_run(trained_pt, synth_data, tmp_path, cli):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    recipe = _write(tmp_path / "evil.yaml", {"stages": [{"name": "a/../../../victim", "prune": {"pruning_ratio": 0.3}}]})
    for _ in range(2):
        code, _, err = cli("pipeline", recipe, f"model={trained_pt}", f"data={synth_data}",
                           f"project={tmp_path / 'runs' / 'compress'}")
        assert code == 2 and "stage 1 name" in _one_error_line(err)
    assert [p.name for p in victim.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "runs").exists()


def test_the_pipeline_never_removes_its_own_input(trained_pt, synth_data, tmp_path, cli):
    import shutil

    stage = tmp_path / "runs" / "pl3" / "stage1_ft0" / "weights"
    stage.mkdir(parents=True)
    model = stage / "best.pt"
    shutil.copy(trained_pt, model)
    code, _, err = cli("pipeline", _recipe(tmp_path, model, synth_data, stages=1), "name=pl3")
    assert code == 2 and "inside this pipeline's run folder" in _one_error_line(err)
    assert model.read_bytes() == trained_pt.read_bytes()


def test_every_stage_is_checked_before_the_first_runs(trained_pt, synth_data, tmp_path, cli):
    recipe = _write(tmp_path / "r.yaml", {"project": str(tmp_path / "runs"), "stages": [
        {"name": "ft", "train": {"epochs": 1}}, {"name": "prune", "prune": {"pruning_ratio": 1.5}}]})
    code, _, err = cli("pipeline", recipe, f"model={trained_pt}", f"data={synth_data}")
    assert code == 2 and "stage 2 'prune'" in _one_error_line(err) and "pruning_ratio" in err
    assert not list((tmp_path / "runs").glob("*/stage*"))


def test_malformed_recipe_and_failing_stage_end_in_one_line(trained_pt, tmp_path, cli):
    code, _, err = cli("pipeline", _write(tmp_path / "bad.yaml", "stages: [\n  - {name: x"), f"model={trained_pt}",
                       "data=d.yaml")
    assert code == 2 and "not valid YAML" in _one_error_line(err)
    recipe = _write(tmp_path / "r.yaml", {"project": str(tmp_path / "runs"), "stages": [{"name": "ft", "train": {}}]})
    r = subprocess.run([sys.executable, "-m", "yolo_compress.cli", "pipeline", str(recipe), f"model={trained_pt}",
                        f"data={tmp_path / 'missing.yaml'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "stage 'stage1_ft' (train) failed" in _one_error_line(r.stderr)


def test_a_live_run_lock_refuses_a_second_runner(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / runner.LOCK).write_text(f"{os.getpid() + 10**6} {sleeper.pid}")
        try:
            with runner._run_lock(tmp_path):
                raise AssertionError("a live stage did not hold the lock")
        except runner.CommandFailed as e:
            assert str(sleeper.pid) in str(e)
    finally:
        sleeper.kill()
        sleeper.wait()
    with runner._run_lock(tmp_path) as lock:  # its holders are gone: the lock is taken over
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_a_stage_dies_with_its_killed_runner(trained_pt, synth_data, tmp_path):
    path = _recipe(tmp_path, trained_pt, synth_data, epochs=50, stages=1)
    proc = subprocess.Popen([sys.executable, "-m", "yolo_compress.cli", "pipeline", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "runs" / "tiny" / runner.LOCK
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.exists() and len(lock.read_text().split()) == 2):
        time.sleep(0.05)
    child = int(lock.read_text().split()[1])
    proc.kill()  # the runner alone, as `kill -9 PID` does
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and os.path.exists(f"/proc/{child}") and "Z" not in _state(child):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or "Z" in _state(child), "the stage outlived its runner"


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
