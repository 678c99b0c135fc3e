"""Start-up cost of the plugin, measured side by side in one run.

(a) ``python -c pass`` and (b) ``lm_eval ls tasks``, each with the plugin's ``culturesafe.pth`` hook in
place and with it moved aside (so lm-eval sees no plugin), runs interleaved so drift hits both alike.
Goals: < 5 ms added to ``python -c pass``; < 0.3 s added to ``lm_eval ls tasks``.

(c) The main work the plugin adds to ``lm_eval ls tasks`` is one more folder in lm-eval's
``TaskIndex.build``; timing that call in-process, lm-eval's folder alone vs with ours, interleaved,
isolates it from the run-to-run spread of a 25-second command (seconds at a few runs); our folder
indexed alone gives the added work without the spread of lm-eval's own 10-second index.

    python benchmarks/bench_startup.py [--python-runs 40] [--ls-runs 3] [--index-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import time
from contextlib import contextmanager
from pathlib import Path

PTH = Path(sysconfig.get_paths()["purelib"]) / "culturesafe.pth"


@contextmanager
def plugin(enabled: bool):
    """Move the .pth aside for the 'without' runs; always put it back."""
    aside = PTH.with_suffix(".pth.off")
    if not enabled:
        PTH.rename(aside)
    try:
        yield
    finally:
        if not enabled:
            aside.rename(PTH)


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(command: list[str], runs: int) -> dict[bool, list[float]]:
    times: dict[bool, list[float]] = {True: [], False: []}
    wall(command)  # warm the OS caches once
    for _ in range(runs):
        for enabled in (False, True):
            with plugin(enabled):
                times[enabled].append(wall(command))
    return times


def report(label: str, times: dict[bool, list[float]], unit: float, unit_name: str, goal: float) -> None:
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    added = (with_ - without) * unit
    print(
        f"{label:<22} {without * unit:>10.1f} {with_ * unit:>10.1f} {added:>+10.1f} {with_ / without:>7.3f}  "
        f"{unit_name}, median of {len(times[True])}; goal < {goal:g} {unit_name} added: "
        f"{'met' if added < goal else 'NOT met'}"
    )


def index_build(runs: int) -> tuple[dict[bool, list[float]], list[float]]:
    """lm-eval's ``TaskIndex.build`` over its own task folder without and with ours, and over ours alone."""
    import os

    os.environ["CULTURESAFE_NO_PLUGIN"] = "1"  # time the folder lists as given, no hook inserting ours
    import lm_eval.tasks._index as index

    from culturesafe_ext.plugin import tasks_dir

    builtin, ours = Path(index.__file__).resolve().parent, tasks_dir()
    folders = {False: [builtin], True: [builtin, ours]}
    times: dict[bool, list[float]] = {True: [], False: []}
    alone: list[float] = []
    index.TaskIndex.build(folders[True])  # warm the OS caches once
    for _ in range(runs):
        for enabled in (False, True):
            start = time.perf_counter()
            index.TaskIndex.build(folders[enabled])
            times[enabled].append(time.perf_counter() - start)
        for _ in range(4):
            start = time.perf_counter()
            index.TaskIndex.build([ours])
            alone.append(time.perf_counter() - start)
    return times, alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-runs", type=int, default=40)
    parser.add_argument("--ls-runs", type=int, default=3)
    parser.add_argument("--index-runs", type=int, default=5)
    args = parser.parse_args()
    if not PTH.exists():
        sys.exit(f"{PTH} not found: install culturesafe (non-editable) into this interpreter first")
    lm_eval = str(Path(sys.executable).parent / "lm_eval")
    print(f"{'':<22} {'without':>10} {'with':>10} {'added':>10} {'ratio':>7}")
    report("python -c pass", measure([sys.executable, "-c", "pass"], args.python_runs), 1000, "ms", 5)
    report("lm_eval ls tasks", measure([lm_eval, "ls", "tasks"], args.ls_runs), 1, "s", 0.3)
    both, alone = index_build(args.index_runs)
    report("TaskIndex.build", both, 1, "s", 0.3)
    ours = statistics.median(alone)
    print(
        f"{'  our folder alone':<22} {'':>10} {ours:>10.3f} {'':>10} {'':>7}  s, median of {len(alone)}: what the "
        f"plugin adds to the index ({'met' if ours < 0.3 else 'NOT met'}), free of the 10-second baseline's spread"
    )


if __name__ == "__main__":
    main()
