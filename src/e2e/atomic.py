"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file one e2e command writes and another reads (config.yaml, checkpoints, weights,
results.json, manifests) goes through `write_atomic`: the bytes go to a temporary file
`.NAME.XXXX.tmp` beside the target, are fsync'ed, then renamed over it, and the folder is
fsync'ed so the rename survives a power cut. `RunDir.remove_temporaries` deletes what a killed
writer left. No torch here: config.py uses it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replace `path` with `data` atomically. The file follows the umask like any `open()`;
    an OSError names `path` (a bare "no space left on device" does not say where)."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    # O_EXCL and a random name keep the temporary file private to this write; mode 0666 lets
    # the umask decide (mkstemp would force 0600).
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        if e.errno is not None and e.filename in (None, str(tmp)):
            e.filename = str(path)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
