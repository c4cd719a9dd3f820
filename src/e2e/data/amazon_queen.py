"""Flight of the Amazon Queen: real human voice acting, ~6,700 English clips, many actors.

Debian's flight-of-the-amazon-queen (freeware, redistributable: see its
/usr/share/doc/flight-of-the-amazon-queen/copyright) ships one archive, `queen.1c`:

    "QTBL", 6 B version, 2 B pad, 1 B codec (1 = MP3), u16BE entry count,
    entries of 12 B name, 1 B bundle, u32BE offset, u32BE size

Speech clips are the `.SB` entries (raw MP3, 11,025 Hz mono). The dialogue files (`.DOG`,
the format of ScummVM's engines/queen/talk.cpp) hold each conversation's lines: after a
20-byte header, a talk header (level count, talk key, Joe's and the other person's line
counts, offsets), the dialogue tree, then tables of (id, length-prefixed string). A line is
spoken in segments split at `*XX` stage directions; segment k of line `id` of a talk is the
clip `%02d%04X%c%X` % (talk key, id, 'P' for the person or 'J' for Joe, k). The speaker of
a 'P' clip is the character the dialogue file is named after (BOB1.DOG -> BOB), of a 'J'
clip Joe, the hero. The dialogue file also holds Joe's opening line (the Joe line with id 0,
clips `%02dSSSSJ%X`) and, after the person-2 offset, the person's and Joe's lines for meeting
again (clips `%02dXXXXP%X`, `%02dXXXXJ%X`); those strings are 2-byte aligned, the tables' 4.

QUEEN2.JAS (logic.cpp) is text, one string a line, in blocks whose sizes QUEEN.JAS gives (after
its 20-byte header: u16BE room, name, object and description counts): object descriptions,
object names, room names, 12 verbs, 40 "Joe responses", then the actors' animations, names and
files. Joe speaks response k as clips `JOE%04d%X` % (k, segment) and description k as
`JOE%04d%X` % (40 + k, segment). QUEEN.JAS itself is binary: the objects (8 x 16-bit: name,
x, y, description, entry, room, state, image; image -3/-4 is a person), the first object of
each room, ... and near its end the actors (u16BE actor, animation, name and file counts, then
12 x 16-bit each: room, bob, name, game-state slot and value, ...).

A cutaway (`.CUT`, cutaway.cpp), after the 20-byte header: u16BE panel mode, i16 object count
(negative: cannot be skipped), i16 flags, offsets of the game states, the sentences and the bank
names, then the objects (17 x 16-bit, the first the object number: 0 or -1 Joe, > 0 an object
of QUEEN.JAS, -2/-3/-4 a caption) with their animations. The sentences are 2-byte aligned
length-prefixed strings: the entry string, then one per object, in order. Object i's sentence
(1-based) is spoken in segments as above, clip `%s%02d%X` % (cutaway name padded with '_' to
5 characters, i, segment): C41B.CUT object 7 segment 2 is C41B_072.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y flight-of-the-amazon-queen"
LICENSE = "freeware, redistributable (Debian package flight-of-the-amazon-queen)"
DOG_HEADER = 20  # every data file in the archive starts with 20 bytes the engine skips
JOE_RESPONSES = 40  # QUEEN2.JAS's block of Joe's stock responses
# Actor names of QUEEN.JAS whose root is not spelt like the dialogue file of the same character.
ACTOR_ALIAS = {"AZURA": "PRIN", "JOHAN": "JOHN"}


def archive() -> Path:
    return Path(os.environ.get("E2E_QUEEN", "/usr/share/scummvm/flight-of-the-amazon-queen/"
                                            "queen.1c"))


@dataclass(frozen=True)
class Clip:
    name: str  # e.g. 020001P2 (no .SB)
    text: str  # as written in the game (mixed case, punctuation)
    speaker: str  # JOE, or the character of the dialogue file
    scene: str  # the file the text comes from, e.g. BOB1 (BOB1.DOG), C41B (.CUT), QUEEN2 (.JAS)
    source: str = "DOG"  # DOG, CUT or JAS


def read_table(data: bytes, where: str) -> dict[str, tuple[int, int]]:
    """Entry name -> (offset, size) from the archive's header."""
    if data[:4] != b"QTBL" or len(data) < 15:
        raise E2EError(f"{where}: not a Flight of the Amazon Queen archive (no QTBL header)")
    (count,) = struct.unpack(">H", data[13:15])
    table, p = {}, 15
    for _ in range(count):
        name = data[p:p + 12].split(b"\0")[0].decode("ascii", "replace")
        off, size = struct.unpack(">II", data[p + 13:p + 21])
        table[name] = (off, size)
        p += 21
    return table


def _string(d: bytes, off: int, align: int = 4) -> tuple[str, int]:
    """One length-prefixed string and the offset after it, aligned as the engine reads it (an
    empty string takes its length byte only)."""
    n = d[off]
    off += 1
    if n == 0:
        return "", off
    return d[off:off + n].decode("latin-1"), (off + n + align - 1) & ~(align - 1)


def _lines(d: bytes, off: int, count: int) -> dict[int, str]:
    out = {}
    for _ in range(count):
        off += 2
        (line_id,) = struct.unpack(">h", d[off:off + 2])
        off += 2
        text, off = _string(d, off)
        out[line_id] = text
    return out


def segments(line: str) -> list[str]:
    """Text of each voice segment: split at `*XX` stage directions (`*XY00(237,112)` is
    longer), as the engine's Talk::speak does."""
    out, start, i = [], 0, 0
    while i < len(line):
        if line[i] == "*":
            out.append(line[start:i])
            i += 1
            i += 13 if line[i:i + 2] == "XY" else 2
            start = i
        else:
            i += 1
    if start != i:
        out.append(line[start:i])
    return out


def _spoken(prefix: str, line: str, speaker: str, scene: str, source: str) -> list[Clip]:
    """The clips of one spoken line: segment k is clip prefix + hex k (segments with no words,
    and lines that name a file or start the credits, are not spoken)."""
    if line in ("", "*", "0") or line.startswith("#") or re.search(r"\.(CUT|DOG)$", line, re.I):
        return []
    return [Clip(f"{prefix}{k:X}", seg.strip(), speaker, scene, source)
            for k, seg in enumerate(segments(line), 1) if re.search(r"[A-Za-z]", seg)]


def parse_dialogue(dog: bytes, scene: str) -> list[Clip]:
    """Every (clip name, text, speaker) a dialogue file names."""
    d = dog[DOG_HEADER:]
    if len(d) < 32:
        raise E2EError(f"dialogue file {scene}.DOG is {len(dog)} bytes: too short")
    level_max, _unique, key, j_max, p_max = struct.unpack(">hhhhh", d[:10])
    (p_off,) = struct.unpack(">H", d[22:24])
    (p2_off,) = struct.unpack(">H", d[26:28])
    j_off = 32 + abs(level_max) * 96
    person = re.sub(r"\d+$", "", scene) or scene
    # Opening and meeting-again lines: 2-byte aligned, unlike the tables below. The opening
    # line is there only when the u16 before it (the id of Joe's line 0) is 0.
    clips = []
    if struct.unpack(">H", d[j_off + 2:j_off + 4])[0] == 0:
        clips += _spoken(f"{key:02d}SSSSJ", _string(d, j_off + 4, 2)[0], "JOE", scene, "DOG")
    again_p, off = _string(d, p2_off, 2)
    again_j, _ = _string(d, off, 2)
    clips += _spoken(f"{key:02d}XXXXP", again_p, person, scene, "DOG")
    clips += _spoken(f"{key:02d}XXXXJ", again_j, "JOE", scene, "DOG")
    for table, who, tag in ((_lines(d, p_off, p_max), person, "P"),
                            (_lines(d, j_off, j_max), "JOE", "J")):
        for line_id, text in table.items():
            if line_id <= 0:
                continue
            for k, seg in enumerate(segments(text), 1):
                if seg.strip():
                    clips.append(Clip(f"{key:02d}{line_id:04X}{tag}{k:X}", seg.strip(), who,
                                      scene))
    return clips


@dataclass
class Jas:
    """What the speech needs from QUEEN.JAS and QUEEN2.JAS."""
    descriptions: list[str]  # object descriptions, 1-based in the game
    names: list[str]  # object names
    responses: list[str]  # Joe's stock responses
    actor_names: list[str]
    objects: list[tuple[int, int, int]]  # (name, room, image) per object; [0] is unused
    room_first: list[int]  # per room (1-based, [0] unused): the object before its first
    actors: list[tuple[int, int, int]]  # (room, bob, actor name number)


def _find_actors(j: bytes, n_lists: int) -> int:
    """Offset of the actor block in QUEEN.JAS. It lies behind the grid and command tables,
    which the speech does not need, so rather than parse those we look for the one place where
    the actor header's three list sizes add up to the rest of QUEEN2.JAS and the graphic
    animations after the actors end at the 5-byte version string ("CEM10")."""
    found = []
    for p in range(8, len(j) - 10, 2):
        n_actors, n_anim, n_name, n_file = struct.unpack(">4H", j[p:p + 8])
        if not n_actors or n_anim + n_name + n_file != n_lists:
            continue
        q = p + 8 + 24 * n_actors
        if q + 2 > len(j):
            continue
        (n_ga,) = struct.unpack(">H", j[q:q + 2])
        end = q + 2 + 6 * max(n_ga, 1)
        if re.fullmatch(rb"C[A-Z]{2}\d{2}", j[end:end + 5]):
            found.append(p)
    if len(found) != 1:
        raise E2EError(f"QUEEN.JAS: {len(found)} places look like the actor table, not 1")
    return found[0]


def read_jas(jas: bytes, jas2: bytes) -> Jas:
    j = jas[DOG_HEADER:]
    n_rooms, n_names, n_objects, n_desc = struct.unpack(">4H", j[:8])
    objects = [(0, 0, 0)]
    for i in range(n_objects):
        name, _x, _y, _desc, _entry, room, _state, image = struct.unpack(
            ">hHHHhHHh", j[8 + 16 * i:24 + 16 * i])
        objects.append((name, room, image))
    p = 8 + 16 * n_objects
    room_first = [0, *struct.unpack(f">{n_rooms}H", j[p:p + 2 * n_rooms])]
    lines = [t.rstrip("\r") for t in jas2.decode("latin-1").split("\n")]
    blocks, at = {}, 0
    for key, n in (("desc", n_desc), ("names", n_names), ("rooms", n_rooms), ("verbs", 12),
                   ("resp", JOE_RESPONSES)):
        blocks[key], at = lines[at:at + n], at + n
    rest = len(lines) - at - (lines[-1] == "")  # a final newline starts no string
    a = _find_actors(j, rest)
    n_actors, n_anim, n_name, _n_file = struct.unpack(">4H", j[a:a + 8])
    actors = [struct.unpack(">hhH", j[a + 8 + 24 * i:a + 14 + 24 * i]) for i in range(n_actors)]
    return Jas(blocks["desc"], blocks["names"], blocks["resp"],
               lines[at + n_anim:at + n_anim + n_name], objects, room_first, actors)


def joe_lines(jas: Jas) -> list[Clip]:
    """Joe's responses and object descriptions, as Logic::makeJoeSpeak names their clips."""
    clips = []
    for k, text in enumerate(jas.responses, 1):
        clips += _spoken(f"JOE{k:04d}", text, "JOE", "QUEEN2", "JAS")
    for k, text in enumerate(jas.descriptions, 1):
        clips += _spoken(f"JOE{JOE_RESPONSES + k:04d}", text, "JOE", "QUEEN2", "JAS")
    return clips


def _root(name: str) -> str:
    """A character's name without variant marks: X10_RITA, RITA-H -> RITA; APE2 -> APE."""
    m = re.match(r"(?:X\d+_)?([A-Z]+)", name.upper())
    return m.group(1) if m else ""


def person_speaker(jas: Jas, obj: int, labels: set[str]) -> str | None:
    """The character who speaks a cutaway line of person object `obj`, or None when that is
    not certain. The engine picks the actor by the object's room, its person ("bob") number
    there and the game state; we don't know the game state, so we take the actor only when
    every candidate is the same character AND the object's own name says so too: objects are
    reused at run time (a "note" speaks for several people in C41B), and their name then
    disagrees. The character is named as the dialogue files name it (ANDERSON -> AND)."""
    if not 0 < obj < len(jas.objects):
        return None
    name, room, _ = jas.objects[obj]
    if not 0 < room < len(jas.room_first) or name == 0 or abs(name) > len(jas.names):
        return None
    bob = sum(1 for i in range(jas.room_first[room] + 1, obj + 1) if jas.objects[i][2] in (-3, -4))
    roots = {_root(jas.actor_names[n - 1]) for r, b, n in jas.actors
             if r == room and b == bob and 0 < n <= len(jas.actor_names)}
    if len(roots) != 1:
        return None
    root = roots.pop()
    words = re.findall(r"[A-Z]+", jas.names[abs(name) - 1].upper())
    if not any(len(w) >= 3 and w[:3] == root[:3] for w in words):
        return None
    root = ACTOR_ALIAS.get(root, root)
    same = [lab for lab in labels if root.startswith(lab) or lab.startswith(root)]
    return min(same, key=len) if same else root


def parse_cutaway(cut: bytes, scene: str, jas: Jas, labels: set[str]) -> list[Clip]:
    """The clips of a cutaway's spoken lines whose speaker is certain: Joe's, and persons'
    (see person_speaker). Captions (-2/-3) are spoken too, but by no one we can name."""
    d = cut[DOG_HEADER:]
    if len(d) < 12:
        raise E2EError(f"cutaway {scene}.CUT is {len(cut)} bytes: too short")
    _panel, count, _flags, states_off, sentence_off, _banks = struct.unpack(">HhhHHH", d[:12])
    count = abs(count)
    _entry, off = _string(d, sentence_off, 2)
    sentences = []
    for _ in range(count):
        text, off = _string(d, off, 2)
        sentences.append(text)
    # The objects (and their animations, whose length depends on the game data) sit in front
    # of the sentences; walk them for their object numbers.
    objects, p = [], 12
    for _ in range(count):
        rec = struct.unpack(">17h", d[p:p + 34])
        p += 34
        (people,) = struct.unpack(">h", d[p:p + 2])
        p += 2 + 2 * max(people, 0)
        num, anim_list, execute, from_obj = rec[0], rec[4], rec[5], rec[12]
        # As Cutaway::getObjectType: Joe (0, or -1 = Joe after a fade) or a person object
        # without animation frames speaks; captions (-2..-4) and copies (from_obj) don't
        # animate; anything else with `execute` set is followed by its animation frames.
        is_person = num in (0, -1) or (0 < num < len(jas.objects)
                                       and jas.objects[num][2] in (-3, -4))
        caption_or_copy = num in (-2, -3, -4) or from_obj > 0
        kind = "person" if is_person and not anim_list and not caption_or_copy else "other"
        if kind == "other" and execute and not caption_or_copy:
            while True:  # animation frames until a -2 header, 9 more values each
                (head,) = struct.unpack(">h", d[p:p + 2])
                p += 2
                if head == -2:
                    break
                p += 18
        objects.append((num, kind))
    # In every cutaway of the game the walk ends 2 (in three, 4) bytes before the game states;
    # if it does not, we lost step and the object numbers are not to be trusted.
    if not 2 <= states_off - p <= 4:
        return []
    prefix = scene + "_" * (5 - len(scene))
    clips = []
    for i, (text, (num, kind)) in enumerate(zip(sentences, objects), 1):
        if kind != "person":
            continue
        who = "JOE" if num in (0, -1) else person_speaker(jas, num, labels)
        if who:
            clips += _spoken(f"{prefix}{i:02d}", text, who, scene, "CUT")
    return clips


class Archive:
    """queen.1c opened once: its table, its dialogue, and clips decoded on demand."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else archive()
        if not self.path.exists():
            raise DatasetMissing(f"Flight of the Amazon Queen (looked for {self.path})", INSTALL)
        self.data = self.path.read_bytes()
        self.table = read_table(self.data, str(self.path))

    def entry(self, name: str) -> bytes:
        off, size = self.table[name]
        return self.data[off:off + size]

    def clips(self, sources: tuple[str, ...] = ("DOG", "CUT", "JAS")) -> list[Clip]:
        """Clips with a transcript: those the dialogue files, cutaways and QUEEN(2).JAS name
        and the archive holds (one per name: the first file that names it)."""
        found: list[Clip] = []
        dogs = sorted(n for n in self.table if n.endswith(".DOG"))
        for name in dogs:
            found += parse_dialogue(self.entry(name), name[:-4])
        if "CUT" in sources or "JAS" in sources:
            jas = read_jas(self.entry("QUEEN.JAS"), self.entry("QUEEN2.JAS"))
            labels = {c.speaker for c in found}
            if "CUT" in sources:
                for name in sorted(n for n in self.table if n.endswith(".CUT")):
                    found += parse_cutaway(self.entry(name), name[:-4], jas, labels)
            if "JAS" in sources:
                found += joe_lines(jas)
        seen: dict[str, Clip] = {}
        for c in found:
            if c.source in sources and f"{c.name}.SB" in self.table and c.name not in seen:
                seen[c.name] = c
        return sorted(seen.values(), key=lambda c: c.name)

    def audio(self, name: str) -> tuple[np.ndarray, int]:
        """(float32 mono samples, rate) of clip `name`; E2EError names the clip if it does
        not decode."""
        import soundfile as sf

        try:
            x, rate = sf.read(io.BytesIO(self.entry(f"{name}.SB")), dtype="float32",
                              always_2d=True)
        except Exception as e:  # noqa: BLE001 - libsndfile's errors vary by codec
            raise E2EError(f"{self.path}:{name}.SB: MP3 clip does not decode ({e})") from None
        return x.mean(axis=1), rate
