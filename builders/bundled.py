"""The bundled samples: the release builders' output on small upstream-format sources, shipped in the wheel.

``culturesafe_data=bundled`` (and ``culturax_data=bundled``) load ``culturesafe_ext/data/bundled/<dataset>/``
like any folder written by ``culturesafe build``; the loader reads it and never builds (data/ does not import
builders/). This module rebuilds those folders from ``culturesafe_ext/data/sample_source/`` and says how a
shipped folder differs from a fresh build, so a builder change cannot leave the sample stale: the tests
compare them, and after a deliberate change one refreshes the sample from the checkout with

    python -m culturesafe_ext.builders.bundled --out culturesafe_ext/data/bundled
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from pathlib import Path

from culturesafe_ext.data import loader

SAMPLE_SOURCE = Path(loader.__file__).resolve().parent / "sample_source"
CULTURAX_SAMPLE = SAMPLE_SOURCE / "culturax" / "CulturaX.csv"
SOURCE_COMMIT = "culturesafe bundled sample"
REFRESH = "python -m culturesafe_ext.builders.bundled --out culturesafe_ext/data/bundled"
# arrow's in-memory sizes in the card's dataset_info depend on the pyarrow release, not on the rows
_SIZE_LINE = re.compile(r"^\s*(num_bytes|dataset_size|download_size|size_in_bytes): \d+\s*$", re.MULTILINE)


def build_sample(dataset: loader.DatasetSource, out: Path) -> None:
    """Write ``dataset``'s sample into ``out`` with its release builder."""
    if dataset is loader.ADACULTURESAFE:
        from culturesafe_ext.builders import adaculturesafe

        adaculturesafe.build(SAMPLE_SOURCE, out, source_commit=SOURCE_COMMIT)
    elif dataset is loader.CULTURAX:
        from culturesafe_ext.builders import culturax

        culturax.build(CULTURAX_SAMPLE, out, source_commit=SOURCE_COMMIT)
    else:
        raise ValueError(f"no bundled sample for {dataset.name!r}")


def differences(shipped: Path, fresh: Path) -> list[str]:
    """What differs between two built folders: file names, the card (sizes aside), reports, and every table's
    schema and rows (read back, so the parquet writer's own version stamp does not count)."""
    import pyarrow.parquet as pq

    names = {p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()}
    fresh_names = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
    out = [f"{name}: only in the shipped sample" for name in sorted(names - fresh_names)]
    out += [f"{name}: missing from the shipped sample" for name in sorted(fresh_names - names)]
    for name in sorted(names & fresh_names):
        a, b = shipped / name, fresh / name
        if name.endswith(".parquet"):
            ta, tb = pq.read_table(a), pq.read_table(b)
            same = ta.schema.remove_metadata() == tb.schema.remove_metadata() and ta.to_pylist() == tb.to_pylist()
        elif name.endswith(".json"):
            same = json.loads(a.read_text(encoding="utf-8")) == json.loads(b.read_text(encoding="utf-8"))
        elif name.endswith(".md"):
            same = _card(a) == _card(b)
        else:
            same = a.read_bytes() == b.read_bytes()
        if not same:
            out.append(f"{name}: differs from a fresh build")
    return out


def _card(path: Path) -> str:
    return _SIZE_LINE.sub("", path.read_text(encoding="utf-8"))


def stale(dataset: loader.DatasetSource) -> list[str]:
    """How the shipped sample of ``dataset`` differs from what its builder makes of the sources now."""
    with tempfile.TemporaryDirectory() as tmp:
        build_sample(dataset, Path(tmp) / dataset.name)
        return differences(dataset.bundled, Path(tmp) / dataset.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the checkout's culturesafe_ext/data/bundled")
    args = parser.parse_args(argv)
    for dataset in (loader.ADACULTURESAFE, loader.CULTURAX):
        target = args.out / dataset.name
        shutil.rmtree(target, ignore_errors=True)
        build_sample(dataset, target)
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
