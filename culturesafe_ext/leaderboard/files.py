"""What a submission folder may hold before anything in it is read: regular files inside it, each under a size limit.

A symlink could point outside the folder (or at the validator's own files), a fifo would block the reader
forever and a device or an oversized file would exhaust memory: each is refused by name, before any file is
opened. The files themselves are then read line by line (:func:`culturesafe_ext.analysis.runs.read_jsonl`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from culturesafe_ext.leaderboard.policy import MAX_FILE_BYTES
from culturesafe_ext.leaderboard.refusals import Refusal


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_files(submission: Path, max_bytes: int = MAX_FILE_BYTES) -> list[Refusal]:
    """Refusals for everything in ``submission`` that is not a regular file or folder inside it, or is too large."""
    root = Path(submission)
    try:
        info = os.lstat(root)
    except OSError as err:
        return [Refusal(str(root), f"cannot read the submission folder: {err.strerror}")]
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        return [Refusal(str(root), f"the submission is {what}: give the lm_eval output folder itself")]
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                target = f" to {os.readlink(path)!r}" if stat.S_ISLNK(mode) else ""
                out.append(Refusal(str(path), f"{_kind(mode)}{target}: a submission holds only regular files"))
            elif os.lstat(path).st_size > max_bytes:
                size = os.lstat(path).st_size
                out.append(Refusal(str(path), f"{size} bytes, above the limit of {max_bytes} bytes per file"))
    return out
