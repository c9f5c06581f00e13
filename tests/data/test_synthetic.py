import hashlib

import pytest
import yaml

from yolo_compress.data.synthetic import CLASSES, make_dataset


def _digest(root):
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "data.yaml"):
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = make_dataset(tmp_path / "a", n_train=6, n_val=3, imgsz=64, seed=3).parent
    b = make_dataset(tmp_path / "b", n_train=6, n_val=3, imgsz=64, seed=3).parent
    c = make_dataset(tmp_path / "c", n_train=6, n_val=3, imgsz=64, seed=4).parent
    assert _digest(a) == _digest(b) != _digest(c)


def test_layout_labels_and_yaml(tmp_path):
    data = make_dataset(tmp_path, n_train=5, n_val=2, imgsz=64, max_objects=3)
    cfg = yaml.safe_load(data.read_text())
    assert cfg["names"] == dict(enumerate(CLASSES))
    assert len(list((tmp_path / "images/train").glob("*.png"))) == 5
    assert len(list((tmp_path / "images/val").glob("*.png"))) == 2
    for f in (tmp_path / "labels").rglob("*.txt"):
        rows = [list(map(float, line.split())) for line in f.read_text().splitlines()]
        assert 1 <= len(rows) <= 3
        for c, x, y, w, h in rows:
            assert int(c) in range(len(CLASSES)) and 0 < w <= 1 and 0 < h <= 1 and 0 <= x <= 1 and 0 <= y <= 1


def test_bad_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'imgsz=8' is invalid"):
        make_dataset(tmp_path, imgsz=8)


def test_synth_refuses_a_folder_that_already_holds_files(tmp_path, cli):
    out = tmp_path / "set"
    assert cli("data", "synth", f"out={out}", "n_train=3", "n_val=1", "imgsz=64")[0] == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    code, _, err = cli("data", "synth", f"out={out}", "n_train=2", "n_val=1", "imgsz=64")
    assert code == 2 and f"'out={out}' already exists" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
