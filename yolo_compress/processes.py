"""Child processes that die with their parent: a pipeline stage must not outlive a killed pipeline and keep writing
into a run folder that the next run may redo."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PARENT_ENV = "YOLO_COMPRESS_PARENT_PID"
PR_SET_PDEATHSIG = 1


def child_env() -> dict[str, str]:
    """The environment for a child that should die with this process (see die_with_parent_if_asked)."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def die_with_parent_if_asked() -> None:
    """In a child started with child_env(): ask Linux to kill it when its parent dies, even by SIGKILL, and exit at
    once if the parent is already gone (it may die before this runs). Called at the child's start, not through
    subprocess's preexec_fn, which is unsafe in a parent that runs threads. Elsewhere than Linux there is no such
    call; the pipeline's run lock still refuses a second runner while an orphan lives."""
    parent = os.environ.pop(PARENT_ENV, "")  # popped: the child's own children have another parent
    if not parent.isdigit():
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(1)
