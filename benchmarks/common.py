"""Shared pieces of the benchmark scripts: the synthetic dataset and trained baselines, cached under runs/benchmarks.

A baseline is trained once and reused by every benchmark that names the same (model, imgsz, epochs), so the
figures in docs all start from the same model and re-running a benchmark does not retrain it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from yolo_compress.data.synthetic import make_dataset

ROOT = Path(os.environ.get("YOLO_COMPRESS_BENCH_DIR", "runs/benchmarks")).resolve()


def synthetic_data(n_train: int = 800, n_val: int = 200, imgsz: int = 160, seed: int = 0) -> Path:
    """data.yaml of the benchmark dataset, generated on first use."""
    out = ROOT / f"synthetic_{n_train}_{n_val}_{imgsz}_{seed}"
    yaml_path = out / "data.yaml"
    return yaml_path if yaml_path.exists() else make_dataset(out, n_train, n_val, imgsz, seed=seed)


def side_by_side_env(processes: int) -> dict[str, str]:
    """Environment for one of ``processes`` runs sharing the CPU: an equal share of the cores each
    (yolo_compress.device honours YOLO_COMPRESS_THREADS). Every run on every core oversubscribes the CPU: the two
    sparsity-benchmark trainings side by side on 2 cores took 358 s per epoch that way, 62-65 s with one thread each."""
    return {**os.environ, "YOLO_COMPRESS_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}


def finished(run: Path) -> bool:
    """Whether the Ultralytics run in ``run`` completed: its final checkpoints are stripped (epoch -1). A run that was
    killed leaves a best.pt of its last good epoch, which must not be taken for the finished model."""
    from yolo_compress.checkpoints import CheckpointError, load_dict

    last = run / "weights" / "last.pt"
    try:
        return last.exists() and load_dict(last)["epoch"] == -1
    except CheckpointError:  # a kill while the checkpoint was written leaves it truncated
        return False


def baseline(model: str = "yolo26n.yaml", imgsz: int = 160, epochs: int = 40, data: Path | None = None, **train) -> Path:
    """best.pt of `model` trained from scratch on the synthetic data; trained on first use, then reused (an
    unfinished run is trained again from scratch)."""
    from yolo_compress import YOLO

    data = data or synthetic_data(imgsz=imgsz)
    name = f"baseline_{Path(model).stem}_{imgsz}_{epochs}e"
    best = ROOT / name / "weights" / "best.pt"
    if not finished(ROOT / name):
        YOLO(model).train(data=str(data), epochs=epochs, imgsz=imgsz, batch=32, project=str(ROOT), name=name,
                          exist_ok=True, seed=0, **train)
    return best


def key_value_args(argv: list[str]) -> dict:
    """``key=value`` command-line arguments, typed as the Ultralytics CLI types them."""
    from ultralytics.cfg import smart_value

    return {k: smart_value(v) for k, v in (a.split("=", 1) for a in argv)}


def publish(lines: list[str], path: Path) -> str:
    """Write a benchmark's Markdown result to ``path``, print it and return it."""
    text = "\n".join(lines)
    path.write_text(text + "\n")
    print(text)
    return text


def cpu_line() -> str:
    """This CPU for a benchmark's header: model name, core count and the instruction sets INT8 kernels use."""
    from yolo_compress.quantize.cpu import cpu_flags, describe

    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    wanted = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return (f"{name}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in cpu_flags()) or 'none'} "
            f"({describe()})")
