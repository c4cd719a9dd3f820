"""`e2e data prepare`: a corpus -> the on-disk columns training streams from (data/columns.py).

Two kinds of input:
- the application's own data (no --from): the splits its config builds, written as they are
  (`--repeat K` writes the training examples K times: a corpus K times larger on disk, for
  measuring that memory stays flat);
- a user's corpus (--from): a Parquet file, JSON Lines, TSV/CSV, a Hugging Face
  `save_to_disk` folder (Arrow files), a Common Voice folder (clips/ + train.tsv, dev.tsv,
  test.tsv), or WebDataset tar shards (a .tar file, or a folder of them; shards named
  train-*.tar, val-*.tar, test-*.tar give the splits). Fields map to the application's
  columns with `--column COLUMN=FIELD`. Splits come from the corpus (split files, folders or
  shard names) when it has them, else are held out at random.

Resumable: run the same command again after an interruption and it continues where it
stopped (CorpusWriter's progress record).
"""

from __future__ import annotations

import csv
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from e2e.data.columns import CorpusWriter
from e2e.data.splits import split_indices
from e2e.errors import E2EError

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
               "dev": "val", "test": "test"}
TABLE_SUFFIXES = (".parquet", ".jsonl", ".json", ".tsv", ".csv")
# WebDataset fields read as text (labels, transcripts, sentences); any other stays bytes
TEXT_FIELDS = {"txt", "text", "cls", "cls2", "label", "transcript", "sentence", "json"}


@dataclass
class Records:
    """One split's records: how many, and a fresh iterator over them (dicts of fields)."""

    count: int
    read: Callable[[], Iterator[dict]]
    base: Path  # relative paths in the records (audio, images) are under this folder
    defaults: dict[str, str] = field(default_factory=dict)  # column -> field, by the format


# ---- readers, one per format ----

def _parquet(path: Path) -> Records:
    import pyarrow.parquet as pq  # the corpus extra (the CLI names it when missing)
    try:
        count = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:  # pyarrow's ArrowInvalid and friends
        raise E2EError(f"{path} is not a readable Parquet file ({e})") from None

    def read() -> Iterator[dict]:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            yield from batch.to_pylist()
    return Records(count, read, path.parent)


def _jsonl(path: Path) -> Records:
    def read() -> Iterator[dict]:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise E2EError(f"{path}, line {number}: not JSON ({e.msg}); one JSON "
                                   "object per line expected") from None
                if not isinstance(record, dict):
                    raise E2EError(f"{path}, line {number}: a {type(record).__name__}, not a "
                                   "JSON object")
                yield record
    with open(path, encoding="utf-8") as f:
        count = sum(1 for line in f if line.strip())
    return Records(count, read, path.parent)


def _table(path: Path, delimiter: str) -> Records:
    def read() -> Iterator[dict]:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE
                                    if delimiter == "\t" else csv.QUOTE_MINIMAL)
            for row in reader:
                if None in row:
                    raise E2EError(f"{path}, line {reader.line_num}: more fields than the "
                                   f"header's {len(reader.fieldnames or [])}")
                yield row
    count = sum(1 for _ in read())
    return Records(count, read, path.parent)


def _arrow_folder(folder: Path) -> Records:
    """One split of a Hugging Face `save_to_disk` folder: its data-*.arrow stream files."""
    import pyarrow as pa

    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise E2EError(f"{folder} holds no .arrow files (a Hugging Face save_to_disk folder "
                       "expected)")

    def batches() -> Iterator:
        for path in files:
            with pa.memory_map(str(path)) as source:
                try:
                    reader = pa.ipc.open_stream(source)
                except pa.ArrowInvalid:
                    reader = pa.ipc.open_file(source)
                    yield from (reader.get_batch(i) for i in range(reader.num_record_batches))
                    continue
                yield from reader

    def read() -> Iterator[dict]:
        for batch in batches():
            yield from batch.to_pylist()
    return Records(sum(b.num_rows for b in batches()), read, folder)


def _webdataset(shards: list[Path]) -> Records:
    """WebDataset tar shards: the files of one sample share a key (the member's name up to the
    first dot of its file name) and stand next to each other; each becomes a field named by
    its extension (`0001.jpg` -> "jpg", `0001.en.txt` -> "en.txt"); text fields (ending in one
    of TEXT_FIELDS) are decoded as UTF-8."""
    def members(shard: Path) -> Iterator[tuple[str, str, tarfile.TarFile, tarfile.TarInfo]]:
        try:
            with tarfile.open(shard) as tar:
                for member in tar:
                    folder, _, name = member.name.rpartition("/")
                    stem, dot, extension = name.partition(".")
                    if member.isfile() and dot and not name.startswith("."):
                        yield f"{folder}/{stem}", extension.lower(), tar, member
        except tarfile.TarError as e:
            raise E2EError(f"{shard} is not a readable tar shard ({e})") from None

    def read() -> Iterator[dict]:
        for shard in shards:
            record: dict = {}
            for key, extension, tar, member in members(shard):
                if record and record["__key__"] != key:
                    yield record
                    record = {}
                record["__key__"] = key
                data = tar.extractfile(member).read()
                if extension.rpartition(".")[2] in TEXT_FIELDS:  # "cls", "en.txt"...
                    try:
                        data = data.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        raise E2EError(f"{shard}, {member.name}: not UTF-8 text") from None
                record[extension] = data
            if record:
                yield record
    count = sum(len({key for key, *_ in members(shard)}) for shard in shards)
    return Records(count, read, shards[0].parent)


def _shards(shards: list[Path]) -> dict[str, Records] | Records:
    """A folder's WebDataset shards: split by name (train-000.tar, val-000.tar...) when
    every shard names its split, else one set of records to hold splits out of."""
    split_of = {p: SPLIT_NAMES.get(re.split(r"[-_.]", p.name.lower())[0]) for p in shards}
    if all(split_of.values()):
        return {split: _webdataset([p for p in shards if split_of[p] == split])
                for split in dict.fromkeys(split_of.values())}
    return _webdataset(shards)


def open_table(path: Path) -> Records:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet(path)
    if suffix in (".jsonl", ".json"):
        return _jsonl(path)
    if suffix in (".tsv", ".csv"):
        return _table(path, "\t" if suffix == ".tsv" else ",")
    raise E2EError(f"{path}: cannot read {suffix or 'a file without a suffix'}; Parquet, "
                   "JSON Lines, TSV or CSV expected")


def open_corpus(source: str | Path) -> dict[str, Records] | Records:
    """A user's corpus: split name -> Records when it comes split, else one Records."""
    path = Path(source).expanduser()
    if not path.exists():
        raise E2EError(f"--from {source}: no such file or folder")
    if path.is_file():
        return _webdataset([path]) if path.name.lower().endswith((".tar", ".tar.gz")) \
            else open_table(path)
    if (path / "clips").is_dir() and (path / "train.tsv").is_file():  # Common Voice
        cv = {"audio": "path", "text": "sentence", "speaker": "client_id"}
        splits = {}
        for name, split in (("train", "train"), ("dev", "val"), ("test", "test")):
            if (path / f"{name}.tsv").is_file():
                records = _table(path / f"{name}.tsv", "\t")
                splits[split] = Records(records.count, records.read, path / "clips", cv)
        return splits
    if (path / "dataset_dict.json").is_file():  # Hugging Face DatasetDict.save_to_disk
        return {SPLIT_NAMES[p.name]: _arrow_folder(p) for p in sorted(path.iterdir())
                if p.is_dir() and p.name in SPLIT_NAMES}
    if list(path.glob("*.arrow")):  # Hugging Face Dataset.save_to_disk
        return _arrow_folder(path)
    tables = {SPLIT_NAMES[p.stem.lower()]: p for p in sorted(path.iterdir())
              if p.suffix.lower() in TABLE_SUFFIXES and p.stem.lower() in SPLIT_NAMES}
    if "train" in tables:
        return {split: open_table(p) for split, p in tables.items()}
    shards = sorted(path.glob("*.tar")) + sorted(path.glob("*.tar.gz"))
    if shards:  # WebDataset
        return _shards(shards)
    raise E2EError(f"--from {source}: a folder, but not a Common Voice folder, a Hugging Face "
                   "save_to_disk folder, a folder of WebDataset .tar shards, or one holding "
                   "train.(parquet|jsonl|tsv|csv) [+ val, test]")


# ---- splitting and mapping ----

def held_out(records: Records, val_fraction: float, test_fraction: float, seed: int
             ) -> dict[str, Records]:
    """One unsplit corpus -> train/val/test at random (seeded), each read in file order."""
    parts = split_indices(records.count, val_fraction, test_fraction, seed, "records")
    which = np.zeros(records.count, dtype=np.uint8)
    for code, part in enumerate(parts):
        which[part] = code
    out = {}
    for code, name in enumerate(("train", "val", "test")):
        if not len(parts[code]):
            continue

        def read(code=code) -> Iterator[dict]:
            for i, record in enumerate(records.read()):
                if which[i] == code:
                    yield record
        out[name] = Records(len(parts[code]), read, records.base, records.defaults)
    return out


def mapped(records: Records, fields: dict[str, str], mapping: dict[str, str],
           required: tuple[str, ...], where: str) -> Iterator[tuple[int, dict]]:
    """(index, {column: value}) for each record; a missing field is a clear error."""
    names = {**{c: c for c in fields}, **records.defaults, **mapping}
    for i, record in enumerate(records.read()):
        out = {}
        for column in fields:
            name = names[column]
            if name in record and record[name] is not None:
                out[column] = record[name]
            elif column in required:
                raise E2EError(f"{where}, record {i}: no field '{name}' for the column "
                               f"'{column}' (fields: {', '.join(map(str, record))}); map it "
                               f"with --column {column}=FIELD")
        yield i, out


# ---- the command ----

def prepare(task, cfg, out: str | Path, source: str | None = None,
            mapping: dict[str, str] | None = None, repeat: int = 1, val_fraction: float = 0.05,
            test_fraction: float = 0.05, seed: int = 0, skip_bad: bool = False,
            progress: bool = True) -> Path:
    """Write `task`'s corpus (its own data, or a user's at `source`) under `out`; resumable."""
    from tqdm import tqdm

    if repeat < 1:
        raise E2EError(f"--repeat must be at least 1, got {repeat}")
    if source is None:
        splits, meta = task.corpus_rows(cfg)
        meta = {**meta, "source": f"{task.name} config ({cfg.data.source})", "repeat": repeat}
    else:
        corpus = open_corpus(source)
        by_split = corpus if isinstance(corpus, dict) else held_out(
            corpus, val_fraction, test_fraction, seed)
        splits, meta = user_rows(task, cfg, by_split, mapping or {}, str(source), skip_bad)
        meta = {**meta, "source": str(source), "repeat": repeat}
    writer = CorpusWriter(out, task.name, task.corpus_columns(cfg, meta), meta)
    for split, (count, rows) in splits.items():
        copies = repeat if split == "train" else 1
        total = count * copies
        done = writer.done(split)
        if writer.finished(split):
            continue
        bar = tqdm(total=total, initial=done, desc=f"prepare {split}", unit="ex",
                   disable=not progress, dynamic_ncols=True)

        def examples(rows=rows, copies=copies) -> Iterator[dict]:
            for _ in range(copies):
                yield from rows()
        writer.write_split(split, islice(examples(), done, None), total,
                           on_row=lambda n, bar=bar: bar.update(n - bar.n))
        bar.close()
    return writer.finish()


def user_rows(task, cfg, by_split: dict[str, Records], mapping: dict[str, str], where: str,
              skip_bad: bool) -> tuple[dict, dict]:
    """Each split of a user's corpus as (count, rows) for the writer, and the corpus meta."""
    fields, required = task.corpus_fields()
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise E2EError(f"--column {unknown[0]}=...: the {task.name} application has no column "
                       f"'{unknown[0]}' (it has {', '.join(fields)})")
    if "train" not in by_split:
        raise E2EError(f"{where}: no training split (found {', '.join(by_split) or 'none'})")
    meta = task.corpus_scan(cfg, {s: mapped(r, fields, mapping, required, where)
                                  for s, r in by_split.items()})
    bad: list[str] = []

    def rows_of(split: str, records: Records) -> Callable[[], Iterator[dict]]:
        def rows() -> Iterator[dict]:
            for i, record in mapped(records, fields, mapping, required, where):
                try:
                    yield task.corpus_example(record, cfg, records.base, meta, split)
                except E2EError as e:
                    if not skip_bad:
                        raise E2EError(f"{where}, {split} record {i}: {e}; fix it, or pass "
                                       "--skip-bad to leave bad records out") from None
                    bad.append(f"{split} record {i}: {e}")
        return rows
    out = {split: (r.count, rows_of(split, r)) for split, r in by_split.items()}
    meta["skipped"] = bad  # filled as the writer reads; columns.json is written after
    return out, meta
