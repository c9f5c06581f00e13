"""What a pipeline says to deploy: its INT8 artifact only when it is measurably faster than its FP32 model and keeps
its accuracy."""

from yolo_compress.pipeline import results


def _rows(int8_ms: float, int8_map: float = 0.295) -> list[dict]:
    return [{"stage": "input", "artifact": "in.pt", "latency_ms": 20.0, "map50_95": 0.31},
            {"stage": "ft", "artifact": "ft/best.pt", "latency_ms": 10.0, "map50_95": 0.30},
            {"stage": "int8", "artifact": "q/int8.onnx", "latency_ms": int8_ms, "map50_95": int8_map}]


def test_an_int8_artifact_that_pays_is_deployed():
    final = results.final_choice(_rows(int8_ms=8.0))
    assert final["artifact"] == "q/int8.onnx" and "1.25x faster" in final["why"]


def test_an_int8_artifact_under_the_threshold_yields_to_its_fp32_checkpoint():
    final = results.final_choice(_rows(int8_ms=9.9))  # 1.01x
    assert final["artifact"] == "ft/best.pt" and "1.01x its speed" in final["why"]
    assert results.final_choice(_rows(int8_ms=12.0))["stage"] == "ft"  # slower: certainly not


def test_a_fast_int8_artifact_that_loses_too_much_accuracy_yields_to_its_fp32_checkpoint():
    final = results.final_choice(_rows(int8_ms=5.0, int8_map=0.27))  # 2x faster, 3 points lower
    assert final["artifact"] == "ft/best.pt" and "loses 0.0300 mAP50-95 (> max_map_drop=0.01)" in final["why"]
    assert results.final_choice(_rows(int8_ms=5.0, int8_map=0.27), max_map_drop=0.05)["stage"] == "int8"


def test_a_pipeline_ending_in_a_checkpoint_deploys_it():
    rows = _rows(int8_ms=8.0)[:2]
    assert results.final_choice(rows)["artifact"] == "ft/best.pt"
    assert results.final_choice(rows[:1]) is None


def test_results_files_say_what_to_deploy(tmp_path):
    rows = [{**r, "params": 1, "gflops": 1.0, "size_mb": 1.0, "speedup": 1.0, "map_delta": 0.0}
            for r in _rows(int8_ms=9.9)]
    md = results.write(tmp_path, rows, 64, results.final_choice(rows))
    assert "Deploy: `ft/best.pt`" in md.read_text()
