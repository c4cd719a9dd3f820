"""Software messages, English -> Spanish, from the gettext catalogs of installed packages.

Every translated Debian package ships `/usr/share/locale/es/LC_MESSAGES/DOMAIN.mo`: the
program's English messages and their Spanish translations, written by people. Read with
Python's own `gettext`, they give ~60k pairs of everyday software text ("The file could not
be opened."), a domain the Bible never covers. Cleaning, with a count of each thing dropped:

- the header entry, and contexts (`msgctxt`) stripped; plurals give their singular form;
- multi-line messages (usage texts) are split into line pairs when both sides have the same
  number of lines, else dropped; blank lines are skipped;
- format-only strings (`%s: %s`, `%d%%`: no word once placeholders are taken out) are dropped;
- pairs whose placeholders differ (`%s` in English, `%d` in Spanish) are dropped: a model
  must not learn to change them. `%1$s`-style positions count as their plain form, since
  translators reorder them;
- a malformed `.mo` file is skipped, with its name and the reason.

Packages are split as wholes (`test_packages`, `val_packages`), and a training pair whose
English text is also a validation or test source is dropped, so no test message is seen
in training, even one shared by two packages ("out of memory").
"""

from __future__ import annotations

import gettext
import os
import re
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from e2e.errors import DatasetMissing, E2EError

INSTALL = ("sudo apt-get install coreutils git binutils postgresql-15 wget tar sed grep "
           "findutils diffutils xz-utils psmisc (their Spanish catalogs come with them)")

# printf conversions (with flags, width, precision, length, `n$` positions), Python's
# %(name)s, and {0} / {name} / {} brace fields. No space flag: in the catalogs "% d" is never
# one, while "100% of" or "ARG1 % ARG2" are common prose ("% o", "% A" read as conversions).
PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-+#0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|Z|t|I64|PRI[diouxX]\d*)?[diouxXeEfFgGaAcspm]"
    r"|\{[A-Za-z0-9_]*\}")
# Read left to right, `%%` (a literal percent sign) is stepped over as a whole, so the "%d"
# in "100%%d" is no placeholder. Every use of placeholders scans with this.
SCAN = re.compile("%%|" + PLACEHOLDER.pattern)
POSITION = re.compile(r"%\d+\$")


def locale_folder() -> Path:
    return Path(os.environ.get("E2E_LOCALE", "/usr/share/locale")) / "es" / "LC_MESSAGES"


@dataclass(frozen=True)
class Message:
    package: str  # the Debian package that ships the catalog (the domain if unknown)
    source: str
    target: str


def find_placeholders(text: str) -> list[str]:
    """The placeholders of `text` as written, in order."""
    return [p for p in SCAN.findall(text) if p != "%%"]


def placeholders(text: str) -> list[str]:
    """The placeholders of `text`, sorted, `%2$s` counted as `%s`."""
    return sorted(POSITION.sub("%", p) for p in find_placeholders(text))


def has_words(text: str) -> bool:
    """Any letters left once the placeholders are taken out (else: a format-only string)."""
    return bool(re.search(r"[A-Za-z]{2,}", SCAN.sub(" ", text)))


def read_catalog(path: Path) -> dict[str, str]:
    """msgid -> msgstr of one `.mo` file; E2EError naming the file if it is malformed."""
    try:
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # noqa: SLF001 (the parsed table)
    except (OSError, struct.error, UnicodeDecodeError, IndexError, ValueError) as e:
        raise E2EError(f"{path}: not a readable gettext catalog ({e}); reinstall the package "
                       "that owns it (dpkg -S FILE) or remove it") from None
    out: dict[str, str] = {}
    for key, value in catalog.items():
        if isinstance(key, tuple):  # plural: (singular msgid, form index)
            if key[1] != 0:
                continue
            key = key[0]
        if not key or not isinstance(value, str):
            continue  # the header
        out[key.split("\x04", 1)[-1]] = value  # "context\x04msgid"
    return out


def owners(files: list[Path]) -> dict[Path, str]:
    """Which Debian package ships each file (one `dpkg -S` call); unknown files keep none."""
    try:
        proc = subprocess.run(["dpkg", "-S", *map(str, files)], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    out = {}
    for line in proc.stdout.splitlines():
        package, _, path = line.partition(": ")
        out[Path(path.strip())] = package.split(":")[0].split(",")[0].strip()
    return out


def clean_pairs(source: str, target: str, counts: Counter) -> list[tuple[str, str]]:
    """The usable (source, target) line pairs of one message, counting what is dropped."""
    src_lines, tgt_lines = source.split("\n"), target.split("\n")
    if len(src_lines) != len(tgt_lines):
        counts["line counts differ"] += 1
        return []
    out = []
    for s, t in zip(src_lines, tgt_lines):
        s, t = " ".join(s.split()), " ".join(t.split())
        if not s or not t:
            counts["empty"] += not (not s and not t)
            continue
        if not has_words(s):
            counts["format only"] += 1
        elif placeholders(s) != placeholders(t):
            counts["placeholders differ"] += 1
        else:
            out.append((s, t))
    return out


def read_messages(folder: Path | None = None, counts: Counter | None = None) -> list[Message]:
    """Unique (source, target) message pairs of every `.mo` catalog in `folder`.

    `counts` (if given) receives how many messages each cleaning rule dropped, and
    "malformed files" (with each such file skipped).
    """
    folder = folder or locale_folder()
    files = sorted(folder.glob("*.mo"))
    if not files:
        raise DatasetMissing(f"Spanish gettext catalogs (no *.mo files in {folder})", INSTALL)
    counts = Counter() if counts is None else counts
    package = owners(files)
    seen, out = set(), []
    for path in files:
        try:
            catalog = read_catalog(path)
        except E2EError:
            counts["malformed files"] += 1
            continue
        for source, target in catalog.items():
            for s, t in clean_pairs(source, target, counts):
                if (s, t) in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add((s, t))
                out.append(Message(package.get(path, path.stem), s, t))
    if not out:
        raise E2EError(f"no usable message pairs in the catalogs of {folder} "
                       f"(dropped: {dict(counts)})")
    return out


def split_by_package(items: list[Message], val_packages: list[str], test_packages: list[str]
                     ) -> tuple[list[Message], list[Message], list[Message]]:
    """Whole packages held out; training drops any pair whose source is held out elsewhere."""
    test = [m for m in items if m.package in test_packages]
    val = [m for m in items if m.package in val_packages and m.package not in test_packages]
    held = {m.source for m in test} | {m.source for m in val}
    train = [m for m in items if m.package not in (*val_packages, *test_packages)
             and m.source not in held]
    return train, val, test


def placeholder_kept(sources: list[str], outputs: list[str]) -> tuple[int, int]:
    """(sources whose output keeps exactly their placeholders, sources with placeholders)."""
    with_ph = [(s, o) for s, o in zip(sources, outputs) if placeholders(s)]
    return sum(placeholders(s) == placeholders(o) for s, o in with_ph), len(with_ph)
