"""A corpus on disk that training reads one example at a time: numpy columns + offsets.

A prepared folder (written by `e2e data prepare`, read by `data.source=FOLDER`):

    columns.json              the task, each split's row count, each column's dtype and shape
    SPLIT/NAME.npy            a fixed-size column: one row per example (N x ...); or, for a
                              variable-length column, every example's values end to end
    SPLIT/NAME.offsets.npy    variable-length columns only: N + 1 int64 offsets into NAME.npy

Text is a variable-length uint8 column of UTF-8 bytes. Every file is a plain `.npy`
(`numpy.load` opens it, memory-mapped if you like); this is the layout of fairseq's and
Megatron's indexed datasets. Why not Parquet or Arrow: they read a whole row group or record
batch to return one row, and a seeded shuffle reads rows in any order; WebDataset's tar
shards are read in sequence, which breaks the engine's exact, resumable global order.

Reads are positional (`os.pread`), never memory maps: the corpus then lives in the kernel's
page cache, which the kernel shares and reclaims, not in the reading process's resident
memory, so a training run's RSS stays flat however large the corpus is. Only the offsets
(8 bytes per example) are held in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.atomic import write_atomic
from e2e.errors import E2EError

FORMAT = "e2e-columns/1"
HEADER_BYTES = 256  # a fixed-size .npy header, rewritten in place when the row count is known


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its dtype, the shape of one example's value (fixed columns), or
    `variable=True` for values of any length along their first axis (audio, text)."""

    dtype: str
    shape: tuple[int, ...] = ()
    variable: bool = False

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "variable": self.variable}

    @classmethod
    def from_dict(cls, d: dict) -> ColumnSpec:
        return cls(d["dtype"], tuple(d.get("shape", ())), bool(d.get("variable", False)))


def is_prepared(folder: str | Path) -> bool:
    return (Path(folder).expanduser() / "columns.json").is_file()


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder).expanduser() / "columns.json"
    if not path.exists() and (path.parent / "progress.json").exists():
        raise E2EError(f"{path.parent}: the corpus was not finished; run the same `e2e data "
                       "prepare` command again to resume it")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise E2EError(f"{path}: not a readable prepared corpus ({e}); prepare it again with "
                       "`e2e data prepare`") from e
    if manifest.get("format") != FORMAT:
        raise E2EError(f"{path}: format '{manifest.get('format')}' is not {FORMAT}; prepare "
                       "the corpus again with this version's `e2e data prepare`")
    return manifest


# ---- writing ----

def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version-1.0 .npy header padded to HEADER_BYTES, so it can be rewritten in place."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": tuple(shape)})
    room = HEADER_BYTES - 10  # magic (6) + version (2) + header length (2)
    text = text.ljust(room - 1) + "\n"
    if len(text) != room:
        raise E2EError(f"a column of shape {shape} does not fit a {HEADER_BYTES}-byte header")
    return b"\x93NUMPY\x01\x00" + room.to_bytes(2, "little") + text.encode("latin1")


class _ColumnFile:
    """Appends rows to one .npy file (and its offsets for a variable-length column)."""

    def __init__(self, folder: Path, name: str, spec: ColumnSpec, rows: int, values: int):
        self.spec, self.dtype = spec, np.dtype(spec.dtype)
        self.path = folder / f"{name}.npy"
        self.values = values  # rows (fixed) or values (variable) already written
        self.file = open(self.path, "r+b" if self.path.exists() else "w+b")
        self.file.truncate(HEADER_BYTES + values * self._row_bytes())
        self.file.seek(0, os.SEEK_END)
        self.offsets: list[int] | None = None
        if spec.variable:
            self.offsets_path = folder / f"{name}.offsets.npy"
            done = (np.load(self.offsets_path)[:rows + 1].tolist()
                    if rows and self.offsets_path.exists() else [0])
            self.offsets = done

    def _row_bytes(self) -> int:
        """Bytes of one row (fixed) or of one value along the first axis (variable)."""
        shape = self.spec.shape[1:] if self.spec.variable else self.spec.shape
        return self.dtype.itemsize * int(np.prod(shape, dtype=np.int64))

    def append(self, value, where: str) -> None:
        if isinstance(value, str | bytes):  # text: stored as UTF-8 bytes
            value = np.frombuffer(value.encode("utf-8") if isinstance(value, str) else value,
                                  dtype=np.uint8)
        a = np.asarray(value)
        expected = self.spec.shape[1:] if self.spec.variable else self.spec.shape
        got = a.shape[1:] if self.spec.variable else a.shape
        if tuple(got) != tuple(expected) or (self.spec.variable and a.ndim == 0):
            raise E2EError(f"{where}: shape {a.shape} does not fit the column's "
                           f"{'(any,) + ' if self.spec.variable else ''}{tuple(expected)}")
        if a.dtype.kind in "iub" and self.dtype.kind in "iu" and a.size:  # ints: by range
            lo, hi = np.iinfo(self.dtype).min, np.iinfo(self.dtype).max
            if a.min() < lo or a.max() > hi:
                raise E2EError(f"{where}: values {a.min()}..{a.max()} do not fit the column's "
                               f"{self.dtype} ({lo}..{hi})")
        try:
            a = a.astype(self.dtype, casting="unsafe" if a.dtype.kind in "iub" else "same_kind",
                         copy=False)
        except TypeError as e:
            raise E2EError(f"{where}: a value of dtype {a.dtype} does not fit the column's "
                           f"{self.dtype}") from e
        self.file.write(np.ascontiguousarray(a).tobytes())
        if self.offsets is not None:
            self.values += len(a)
            self.offsets.append(self.values)
        else:
            self.values += 1

    def sync(self) -> dict:
        """Flush to disk; the sizes a resumed writer truncates back to."""
        self.file.flush()
        os.fsync(self.file.fileno())
        if self.offsets is not None:
            np.save(self.offsets_path, np.asarray(self.offsets, dtype=np.int64))
        return {"values": self.values}

    def finish(self) -> None:
        shape = (self.values, *(self.spec.shape[1:] if self.spec.variable else self.spec.shape))
        self.file.seek(0)
        self.file.write(_npy_header(self.dtype, shape))
        self.sync()
        self.file.close()


class CorpusWriter:
    """Writes a prepared corpus split by split, example by example; resumable.

    Every `checkpoint_every` examples the files are flushed and `progress.json` records how
    far each got, so a killed `e2e data prepare` resumes where it stopped: files are cut back
    to the last record and `done(split)` says how many examples to skip.
    """

    def __init__(self, folder: str | Path, task: str, columns: dict[str, ColumnSpec],
                 meta: dict | None = None, checkpoint_every: int = 1000):
        self.folder = Path(folder).expanduser()
        self.task, self.columns, self.meta = task, columns, meta or {}
        self.every = checkpoint_every
        self.progress_path = self.folder / "progress.json"
        self.progress = self._resume()

    def _resume(self) -> dict:
        if (self.folder / "columns.json").exists():
            raise E2EError(f"{self.folder} already holds a finished corpus; choose another "
                           "--out or delete it first")
        if self.progress_path.exists():
            progress = json.loads(self.progress_path.read_text())
            if progress.get("columns") != {k: v.to_dict() for k, v in self.columns.items()} \
                    or progress.get("task") != self.task:
                raise E2EError(f"{self.folder} holds an unfinished corpus of other columns or "
                               "another task; delete it or choose another --out")
            return progress
        if self.folder.exists() and any(self.folder.iterdir()):
            raise E2EError(f"{self.folder} is not empty and holds no unfinished corpus; choose "
                           "another --out or delete it first")
        self.folder.mkdir(parents=True, exist_ok=True)
        progress = {"task": self.task, "columns": {k: v.to_dict() for k, v in self.columns.items()},
                    "splits": {}}
        # recorded at once: a first attempt that fails on a bad record can simply be rerun
        write_atomic(self.progress_path, json.dumps(progress, indent=1))
        return progress

    def done(self, split: str) -> int:
        """Examples of `split` already written (a resumed run skips them)."""
        return self.progress["splits"].get(split, {}).get("rows", 0)

    def finished(self, split: str) -> bool:
        return bool(self.progress["splits"].get(split, {}).get("finished"))

    def write_split(self, split: str, examples: Iterable[dict], total: int | None = None,
                    on_row=None) -> int:
        """Append `examples` (dicts of column -> value) to `split`, from where it stopped."""
        state = self.progress["splits"].setdefault(split, {"rows": 0, "files": {}})
        if state.get("finished"):
            return state["rows"]
        folder = self.folder / split
        folder.mkdir(exist_ok=True)
        files = {name: _ColumnFile(folder, name, spec, state["rows"],
                                   state["files"].get(name, {}).get("values", 0))
                 for name, spec in self.columns.items()}
        rows = state["rows"]
        for example in examples:
            missing = [c for c in self.columns if c not in example]
            if missing:
                raise E2EError(f"{split} example {rows}: no value for column "
                               f"'{missing[0]}' (columns: {', '.join(self.columns)})")
            for name, f in files.items():
                f.append(example[name], f"{split} example {rows}, column '{name}'")
            rows += 1
            if on_row:
                on_row(rows)
            if rows % self.every == 0:
                self._record(state, rows, files)
        for f in files.values():
            f.finish()
        state["finished"] = True
        self._record(state, rows, files, synced=True)
        return rows

    def _record(self, state: dict, rows: int, files: dict, synced: bool = False) -> None:
        state["rows"] = rows
        state["files"] = {name: ({"values": f.values} if synced else f.sync())
                          for name, f in files.items()}
        write_atomic(self.progress_path, json.dumps(self.progress, indent=1))

    def finish(self) -> Path:
        """Write columns.json (the corpus is complete) and drop the progress record."""
        manifest = {"format": FORMAT, "task": self.task,
                    "columns": {k: v.to_dict() for k, v in self.columns.items()},
                    "splits": {s: v["rows"] for s, v in self.progress["splits"].items()},
                    "meta": self.meta}
        write_atomic(self.folder / "columns.json", json.dumps(manifest, indent=1))
        self.progress_path.unlink(missing_ok=True)
        return self.folder


# ---- reading ----

class Column:
    """One column of one split, read row by row with positional reads."""

    def __init__(self, path: Path, spec: ColumnSpec):
        self.path, self.spec = path, spec
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            self.start = f.tell()
        if fortran:
            raise E2EError(f"{path} is in Fortran order; prepare the corpus again")
        self.dtype, self.shape = dtype, shape
        self.row_shape = shape[1:]
        self.row_bytes = dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.offsets = (np.load(path.with_suffix(".offsets.npy")) if spec.variable else None)
        self.fd = os.open(path, os.O_RDONLY)  # pread needs no file position: safe across forks

    def __len__(self) -> int:
        return len(self.offsets) - 1 if self.offsets is not None else self.shape[0]

    def lengths(self) -> np.ndarray:
        """Values per row of a variable-length column (e.g. samples, UTF-8 bytes)."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.offsets is not None:
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            count, first = b - a, a
        else:
            count, first = 1, i
        raw = os.pread(self.fd, count * self.row_bytes, self.start + first * self.row_bytes)
        value = np.frombuffer(raw, dtype=self.dtype)
        return value.reshape((count, *self.row_shape) if self.offsets is not None
                             else self.row_shape)

    def text(self, i: int) -> str:
        return self[i].tobytes().decode("utf-8")

    def texts(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self.text(i)

    def __del__(self):
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)

    def __getstate__(self):  # a DataLoader worker started by spawn reopens the file
        return {k: v for k, v in self.__dict__.items() if k != "fd"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.fd = os.open(self.path, os.O_RDONLY)


class PreparedSplit:
    """The columns of one split of a prepared corpus."""

    def __init__(self, folder: str | Path, split: str):
        self.folder = Path(folder).expanduser()
        self.manifest = read_manifest(self.folder)
        if split not in self.manifest["splits"]:
            raise E2EError(f"{self.folder} has no '{split}' split (it has "
                           f"{', '.join(self.manifest['splits'])})")
        specs = {k: ColumnSpec.from_dict(v) for k, v in self.manifest["columns"].items()}
        self.columns = {name: Column(self.folder / split / f"{name}.npy", spec)
                        for name, spec in specs.items()}
        self.rows = self.manifest["splits"][split]
        for name, column in self.columns.items():
            if len(column) != self.rows:
                raise E2EError(f"{self.folder / split / name}.npy has {len(column)} rows, "
                               f"columns.json says {self.rows}; prepare the corpus again")

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]


def require_columns(folder: str | Path, task: str, needed: dict[str, str]) -> dict:
    """The manifest of a prepared corpus for `task` that has every column in `needed`
    (name -> what it is, for the message)."""
    manifest = read_manifest(folder)
    if manifest["task"] != task:
        raise E2EError(f"{folder} was prepared for the {manifest['task']} application, not "
                       f"{task}; prepare it with `e2e data prepare {task} ...`")
    for name, what in needed.items():
        if name not in manifest["columns"]:
            raise E2EError(f"{folder} has no column '{name}' ({what}); it has "
                           f"{', '.join(manifest['columns'])}")
    return manifest
