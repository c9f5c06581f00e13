"""auto: the FLOPs ladder, the stop rule, argument errors, and one tiny end-to-end search."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from yolo_compress.cfg import ArgumentError
from yolo_compress.commands.auto import check as check_auto
from yolo_compress.commands.auto import run as run_auto
from yolo_compress.pipeline import auto


def test_ladder_starts_at_the_target_and_relaxes_towards_the_baseline():
    assert auto.ladder(0.5) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert auto.ladder(0.85) == [0.85]


def _recorder(maps):
    calls = []

    def evaluate(frac):
        calls.append(frac)
        return maps[frac]

    return calls, evaluate


def test_search_tries_the_target_then_bisects_the_rest_of_the_ladder():
    rungs = [0.5, 0.6, 0.7, 0.8, 0.9]
    calls, evaluate = _recorder({0.5: 0.30, 0.6: 0.38, 0.7: 0.395, 0.8: 0.40, 0.9: 0.41})
    chosen, tried = auto.search(rungs, evaluate, reference=0.40, max_map_drop=0.01)
    # 0.8 and 0.9 never trained; 0.6 neither: the line from (0.5, 0.30) to (0.7, 0.395) gives it 0.3475 < 0.39
    assert chosen == 0.7 and calls == [0.5, 0.7] and tried == [(0.5, 0.30), (0.7, 0.395)]
    calls, evaluate = _recorder({0.5: 0.385, 0.6: 0.392, 0.7: 0.398})
    chosen, tried = auto.search(rungs, evaluate, reference=0.40, max_map_drop=0.01)
    assert chosen == 0.6 and calls == [0.5, 0.7, 0.6]  # the line gives 0.6 0.3915, within budget: trained
    calls, evaluate = _recorder({0.5: 0.395})
    assert auto.search(rungs, evaluate, reference=0.40, max_map_drop=0.01)[0] == 0.5 and calls == [0.5]
    calls, evaluate = _recorder({0.5: 0.1, 0.7: 0.2, 0.8: 0.3, 0.9: 0.395})
    assert auto.search(rungs, evaluate, reference=0.40, max_map_drop=0.01)[0] == 0.9 and calls == [0.5, 0.7, 0.8, 0.9]


def test_predicted_within_reads_the_line_between_two_measured_rungs():
    assert auto.predicted_within(0.6, (0.5, 0.30), (0.7, 0.40), floor=0.35)
    assert not auto.predicted_within(0.6, (0.5, 0.30), (0.7, 0.40), floor=0.351)


def test_search_without_a_candidate_in_budget_returns_none_and_every_try():
    chosen, tried = auto.search([0.5, 0.6], lambda f: 0.1, reference=0.4, max_map_drop=0.01)
    assert chosen is None
    assert [f for f, _ in tried] == [0.5, 0.6]


def test_latency_target_takes_the_least_pruning_that_is_fast_enough():
    fractions, ms = [0.1, 0.2, 0.3, 0.4], [2.0, 2.6, 3.1, 3.9]
    assert auto.fraction_for_latency(fractions, ms, target_ms=3.2, input_ms=6.0) == 0.3
    with pytest.raises(ArgumentError, match="out of reach.*2.00 ms"):
        auto.fraction_for_latency(fractions, ms, target_ms=1.5, input_ms=6.0)
    with pytest.raises(ArgumentError, match="already met by the input model"):
        auto.fraction_for_latency(fractions, ms, target_ms=7.0, input_ms=6.0)


def test_latency_probe_times_pruned_copies_against_the_input(trained_pt, synth_data, tmp_path):
    args = check_auto({"model": str(trained_pt), "data": str(synth_data), "imgsz": 64, "target_flops": 0.5})
    fractions, ms, input_ms = auto.latency_probe(args, tmp_path, fractions=[0.3])
    assert fractions == [0.3] and len(ms) == 1
    assert ms[0] < input_ms  # keeping 30 % of the FLOPs runs measurably faster than the input


def test_sensitivity_is_computed_once_for_every_rung(trained_pt, synth_data, monkeypatch):
    from yolo_compress.pruning import suggest

    calls = []
    monkeypatch.setattr(suggest, "sensitivities", lambda *a: calls.append(a) or ([], []))
    monkeypatch.setattr(suggest, "suggest", lambda model, images, frac, imgsz, *opt, rows: ({"frac": frac}, *rows))
    source = auto.InputSensitivity(check_auto({"model": str(trained_pt), "data": str(synth_data), "imgsz": 64,
                                               "target_flops": 0.5}))
    assert [source.plan(f)[0]["frac"] for f in (0.5, 0.6, 0.7)] == [0.5, 0.6, 0.7]
    assert len(calls) == 1


def test_candidates_are_channel_pruned_to_the_fraction_unless_suggest_plans_are_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(auto, "plan_for", lambda args, run_dir, frac, source: run_dir / f"plan{frac}.yaml")
    args = {"candidates": "channel"}
    assert auto.prune_stage(args, tmp_path, 0.5, None) == {"target_flops": 0.5, "importance_metric": "l2",
                                                           "reconstruct": True}
    assert auto.prune_stage({"candidates": "suggest"}, tmp_path, 0.5, None) == {"plan": str(tmp_path / "plan0.5.yaml")}


def test_candidates_step_every_batch_unless_nbs_or_an_automatic_batch_is_set():
    assert auto.step_every_batch({"batch": 8}) == {"nbs": 8}
    assert auto.step_every_batch({}) == {"nbs": 16}  # Ultralytics' default batch
    assert auto.step_every_batch({"batch": 8, "nbs": 32}) == {} and auto.step_every_batch({"batch": -1}) == {}


def test_argument_errors_name_the_argument(tmp_path):
    pt = tmp_path / "m.pt"
    pt.write_bytes(b"x")
    (tmp_path / "d.yaml").write_text("")
    with pytest.raises(FileNotFoundError, match="'data=nowhere.yaml' does not exist"):
        check_auto({"model": str(pt), "data": "nowhere.yaml", "target_flops": 0.5})
    with pytest.raises(ArgumentError, match="exactly one target"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml")})
    with pytest.raises(ArgumentError, match="exactly one target"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_flops": 0.5, "target_latency_ms": 5.0})
    with pytest.raises(ArgumentError, match="target_latency_ms"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_latency_ms": 0})
    with pytest.raises(ArgumentError, match="target_flops"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_flops": 1.5})
    with pytest.raises(FileNotFoundError, match="missing.pt' does not exist"):
        check_auto({"model": str(tmp_path / "missing.pt"), "data": str(tmp_path / "d.yaml"), "target_flops": 0.5})
    with pytest.raises(ArgumentError, match="not a loadable checkpoint"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_flops": 0.5})
    with pytest.raises(ArgumentError, match="max_map_drop"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_flops": 0.5, "max_map_drop": -1})
    with pytest.raises(ArgumentError, match="pruning_ratio"):
        check_auto({"model": str(pt), "data": str(tmp_path / "d.yaml"), "target_flops": 0.5, "pruning_ratio": 0.3})


def test_auto_end_to_end_picks_a_pruned_stock_checkpoint(trained_pt, synth_data, tmp_path):
    from yolo_compress import measure

    before = trained_pt.read_bytes()
    chosen = run_auto({"model": str(trained_pt), "data": str(synth_data), "target_flops": 0.6,
                                "max_map_drop": 1.0, "epochs": 1, "imgsz": 64, "int8": False, "batch": 8,
                                "workers": 0, "plots": False, "project": str(tmp_path), "name": "auto"})
    assert trained_pt.read_bytes() == before  # the input model is never overwritten
    assert chosen.suffix == ".pt" and chosen.is_relative_to(tmp_path / "auto")
    kept = measure.gflops(measure.load_model(chosen), 64) / measure.gflops(measure.load_model(trained_pt), 64)
    assert kept <= 0.6 + 0.1  # the nearest widths in steps of 16 (this tiny model: 67 %)
    summary = json.loads((tmp_path / "auto" / "auto.json").read_text())
    assert [t["flops_kept"] for t in summary["tried"]] == [0.6] and summary["chosen"] == str(chosen)
    cost = summary["wall_seconds"]  # what the search cost, against one fine-tune of the input
    assert list(cost["candidates"]) == ["0.6"] and cost["total"] >= cost["reference"] + cost["candidates"]["0.6"]
    assert cost["total_in_reference_fine_tunes"] == pytest.approx(cost["total"] / cost["reference"], rel=0.01)
    assert summary["distillation"]["used"] is True and "real photographs" in summary["distillation"]["why"]
    assert summary["candidate_refit"]["reconstruct"] is True  # candidates' pruned layers refitted, and why
    prune = json.loads((tmp_path / "auto" / "flops60" / "stage1_prune" / "stage.json").read_text())["args"]
    assert prune["target_flops"] == 0.6 and prune["importance_metric"] == "l2" and "prune_head" not in prune
    recipe = yaml.safe_load((tmp_path / "auto" / "flops60" / "stage2_finetune" / "args.yaml").read_text())
    assert recipe["teacher_model"] == str(trained_pt) and recipe["distill_alpha"] == 0.2
    assert recipe["nbs"] == 8  # an optimizer step every batch (batch 8) for the pruned candidate
    ref_args = yaml.safe_load((tmp_path / "auto" / "reference" / "stage1_finetune" / "args.yaml").read_text())
    assert ref_args["nbs"] == 64  # the reference keeps Ultralytics' default
    reference = tmp_path / "auto" / "reference" / "stage1_finetune" / "weights" / "best.pt"
    assert summary["reference"]["artifact"] == str(reference)  # judged against the input fine-tuned alike
    assert measure.count_params(measure.load_model(reference)) == measure.count_params(measure.load_model(trained_pt))
    rows = json.loads((tmp_path / "auto" / "results.json").read_text())["rows"]
    assert [r["stage"] for r in rows] == ["reference", "input", "flops60"]
    code = f"from ultralytics import YOLO; m = YOLO({str(chosen)!r}); m.predict(__import__('numpy').zeros((64, 64, 3), 'uint8'), imgsz=64, verbose=False)"
    subprocess.run([sys.executable, "-c", code], check=True)  # stock Ultralytics, yolo_compress never imported


def test_int8_is_shipped_only_when_it_is_faster_than_its_fp32_model():
    rows = [{"stage": "flops50", "artifact": "c/best.pt", "latency_ms": 10.0},
            {"stage": "flops50_int8", "artifact": "c/int8.onnx", "latency_ms": 9.0}]
    chosen, note = auto.faster_of(Path("c/int8.onnx"), rows)
    assert chosen == Path("c/int8.onnx") and "1.11x faster" in note
    rows[1]["latency_ms"] = 9.8  # 1.02x: not worth an INT8 artifact
    chosen, note = auto.faster_of(Path("c/int8.onnx"), rows)
    assert chosen == Path("c/best.pt") and "1.02x its speed" in note
    assert auto.faster_of(Path("c/best.pt"), rows) == (Path("c/best.pt"), None)


def test_a_rung_that_prunes_to_trained_widths_is_not_trained_again():
    trained = []
    trials = auto.Trials(lambda f: trained.append(f) or Path(f"flops{f}.pt"), lambda pt: 0.3,
                         lambda f: ("narrow",) if f <= 0.6 else ("wide",))
    assert [trials(f) for f in (0.5, 0.6, 0.7)] == [0.3, 0.3, 0.3]
    assert trained == [0.5, 0.7]  # 0.6 kept the same widths as 0.5
    assert trials.same_as == {0.6: 0.5} and trials.artifacts[0.6] == Path("flops0.5.pt")
    assert list(trials.seconds) == [0.5, 0.7]  # only trained rungs cost time
