"""The quick start's argument table is the user's reference: it must list every training argument and its default."""

import re
from pathlib import Path

from yolo_compress.cfg import DEFAULTS, TRAIN_ARGS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_quickstart_table_lists_every_training_argument_with_its_default():
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", (DOCS / "quickstart.md").read_text(), flags=re.M))
    assert set(rows) == set(TRAIN_ARGS)
    for name, default in rows.items():
        assert default == str(DEFAULTS[name]), name
