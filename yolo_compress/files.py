"""Writing output files so that a failed run leaves no half-written file and never replaces its input."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


SCRATCH = ".yc_tmp"  # prefix of every temporary file and folder: .yc_tmp.<pid>.<random>


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a finished or killed run's temporaries and locks can be cleared). A killed
    process whose parent died too stays a zombie until init reaps it, which in a container can take a while: on Linux
    a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # "pid (comm) S ...": the state follows the last ')'
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no procfs (macOS, Windows): kill() said it exists; with procfs it just ended
        return not Path("/proc").is_dir()


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporaries a killed run left in ``folder`` (their process is gone); return what was removed.

    Temporaries live in the output folder, never in /tmp, so a killed run's leftovers are found by the next run
    that writes there, and a run never leaves anything outside its output folder."""
    removed = []
    for path in folder.glob(f"{SCRATCH}.*") if folder.is_dir() else ():
        pid = path.name.split(".")[2]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def scratch_dir(folder: Path) -> Iterator[Path]:
    """A temporary folder inside ``folder``, removed when the block ends (clean_stale removes it after a kill)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{SCRATCH}.{os.getpid()}.", dir=folder))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """A temporary path beside `dest` that replaces `dest` only if the block succeeds.

    mkstemp creates the file readable by its owner only (0600); the result gets the mode any new file would
    (0666 minus the umask), so a model written by yolo-compress is as readable as one Ultralytics writes.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{SCRATCH}.{os.getpid()}.{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
