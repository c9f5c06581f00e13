"""Atomic output files: complete or absent, and as readable as any new file."""

from __future__ import annotations

import os
import stat

import pytest

from yolo_compress.files import atomic_path


def test_result_gets_the_mode_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "sub" / "m.onnx") as tmp:
            tmp.write_bytes(b"model")
    finally:
        os.umask(old)
    out = tmp_path / "sub" / "m.onnx"
    assert out.read_bytes() == b"model"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's owner-only 0600


def test_failure_leaves_the_destination_untouched(tmp_path):
    dest = tmp_path / "m.pt"
    dest.write_bytes(b"input")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("export failed")
    assert dest.read_bytes() == b"input" and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_a_zombie_is_not_alive():
    """A killed stage whose runner died too stays a zombie until init reaps it; its lock must not block the resume."""
    import subprocess
    import time

    from yolo_compress.files import alive

    child = subprocess.Popen(["sleep", "0"])
    time.sleep(0.3)  # ended, not yet reaped: a zombie
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid) and alive(os.getpid())
