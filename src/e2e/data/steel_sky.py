"""Beneath a Steel Sky: ~3,400 voiced English lines (1.9 h) by a cast of British actors, with
their text in English and Spanish.

Debian's beneath-a-steel-sky (freeware by Revolution Software, redistributable: see
/usr/share/doc/beneath-a-steel-sky/copyright) ships the CD version v0.0372: `sky.dnr` indexes
`sky.dsk`. sky.dnr is a u32LE entry count, then 8-byte entries: u16LE file number, 24-bit LE
offset (bit 23 set: the rest counts 16-byte units), 24-bit LE size and flags (bit 23 set: stored
as is; bit 22 set: the engine drops the header once unpacked).

A file starts with the game's 22-byte header (11 u16LE: flag, ..., at word 6 the low 16 bits
of the size with the header, the high bits in the flag's high byte; flag bit 7 marks a packed
file). A file packed with Rob Northen's method 1 (RNC-1) goes on with
"RNC\\x01", u32BE unpacked size, u32BE packed size, u16BE CRC-16 of the unpacked and of the
packed bytes, a leeway byte and a chunk count, then the packed bits (see `rnc_unpack`).

Text: the text of language L, section S is file 60600 + 8 L + S (L: 0 English, 3 US English,
7 Spanish). Its u16LE words: [0] where the skip table starts, [1] where the bits start, then
one u16 per 32-text block: the block's length. Within a block, text k starts after the skip
bytes of texts 0..k-1 (a byte b >= 0x80 means (b & 0x7F) * 8). Lengths count 2-bit steps; each
text is a Huffman code (the game's table below, MSB first) ending at a NUL. Text number t is
text t & 0xFFF of section t >> 12; it is spoken by file 50000 + SPEECH_BASE[t >> 12] + (t &
0xFFF): unsigned 8-bit mono samples at 11,025 Hz behind the 22-byte header.

Speakers: neither the text nor the speech files name who speaks (the game scripts do). Clips are
grouped by the game's section (t >> 12: the city's levels, in the order of play), so a
"speaker" here is a part of the game; the hero, Robert Foster, speaks in every part, so the
speech mix trains this corpus whole (`speech_real.NOT_BY_VOICE`) rather than hold parts out.

Clip form: `audio()` returns (float32 samples in [-1, 1), 11,025), as the other game readers.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y beneath-a-steel-sky"
LICENSE = "freeware by Revolution Software, redistributable (Debian package beneath-a-steel-sky)"
RATE = 11_025
HEADER = 22  # the game's data-file header in front of every packed or sound file
ENGLISH, US_ENGLISH, SPANISH = 0, 3, 7
TEXT_FILE, SPEECH_FILE = 60600, 50000
SECTIONS = 8
SPEECH_BASE = (0, 600, 1100, 2430, 3380, 4530, 5080, 5230)  # speech file of text 0, by section

# The game's text code (v0.0372): every symbol in the order of its code word, and each code
# word's length in bits (as digits, 'a' = 10 ...). Code words in that order are consecutive
# binary numbers, so the lengths alone rebuild them (`_codes`).
_SYMBOLS = (b" eaostn.ir\x00EumAlIdRNSTOhcDgLCpU!yMPvH?b'f,GBVkFqwK-WJ*zYj+Q\x85)Z\x8b<\x95~"
            b"\x8a\x87:\x7f]#xX\x91\x88`20\x831/(=\x86^39\x984}8\\\"\x90&\x8d56\x92\x8f\x8e"
            b"\x93\x8c7\x80\x81\x99$@[\x9a_>\x96\x82%\t\x9c\x97{\x94!")
_LENGTHS = ("3445555554665556666665776667777776887778877799888998889999aa9aa9bbaaabbabbaccbc"
            "cbccbbbccccddcccddddddddeedeeeeffeeeffefffgg")
# The Spanish text is written in the game's Spanish font, which draws accented letters in the
# places of a few ASCII symbols and bytes above 0x7F. Read off the data: est<n, qu+, ten\x87a,
# s\x88lo, n\\mero, se\x8dal, TAMA\x8cO, verg#enza, VERG}ENZA, \x8aC\x88mo?, \x8bEh!, and `...` as
# quotes. 0x80/0x81/0x82 occur only on the game's computer screens (unvoiced): read as guessed.
SPANISH_CHARS = {ord("<"): "á", ord("+"): "é", 0x87: "í", 0x88: "ó", ord("\\"): "ú",
                 0x8D: "ñ", 0x8C: "Ñ", ord("#"): "ü", ord("}"): "Ü", 0x8A: "¿", 0x8B: "¡",
                 ord("`"): '"', 0x80: "«", 0x81: "»", 0x82: "/"}


def game_dir() -> Path:
    return Path(os.environ.get("E2E_STEEL_SKY", "/usr/share/scummvm/beneath-a-steel-sky"))


@lru_cache(maxsize=1)
def _codes() -> dict[str, int]:
    """Code word (as a '0'/'1' string) -> symbol."""
    out, code, prev = {}, 0, None
    for sym, n in zip(_SYMBOLS, (int(c, 36) for c in _LENGTHS)):
        if prev is not None:
            code = (code + 1) << n - prev if n >= prev else (code + 1) >> prev - n
        out[format(code, f"0{n}b")] = sym
        prev = n
    return out


def crc16(data: bytes) -> int:
    """CRC-16 (reflected polynomial 0xA001, start 0), the check RNC files carry."""
    table = _crc_table()
    crc = 0
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


@lru_cache(maxsize=1)
def _crc_table() -> list[int]:
    out = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0xA001 if n & 1 else n >> 1
        out.append(n)
    return out


class _Bits:
    """RNC's bit stream: 16-bit little-endian words, least significant bit first; words are
    read only when their bits are needed, so `pos` is where literal bytes start."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos, self.acc, self.n = data + bytes(4), pos, 0, 0

    def read(self, k: int) -> int:
        while self.n < k:
            self.acc |= (self.data[self.pos] | self.data[self.pos + 1] << 8) << self.n
            self.pos += 2
            self.n += 16
        v = self.acc & ((1 << k) - 1)
        self.acc >>= k
        self.n -= k
        return v

    def peek(self, k: int) -> int:
        acc = self.acc
        if self.n < k:  # look ahead without taking the words (literals may follow)
            d, p = self.data, self.pos
            acc |= (d[p] | d[p + 1] << 8 | d[p + 2] << 16 | d[p + 3] << 24) << self.n
        return acc & ((1 << k) - 1)

    def table(self) -> tuple[list[tuple[int, int]], int]:
        """One Huffman table: 5-bit symbol count, 4-bit code lengths; canonical codes given in
        order of length then symbol, stored bit-reversed. Returns a lookup by the next bits."""
        lengths = [self.read(4) for _ in range(self.read(5))]
        longest = max(lengths, default=0)
        lut = [(0, 0)] * (1 << longest)
        code = 0
        for n in range(1, 17):
            for sym, ln in enumerate(lengths):
                if ln != n:
                    continue
                rev = int(format(code >> (16 - n), f"0{n}b")[::-1], 2)
                for hi in range(1 << (longest - n)):
                    lut[rev | hi << n] = (sym, n)
                code += 1 << (16 - n)
        return lut, longest

    def value(self, table: tuple[list[tuple[int, int]], int]) -> int:
        lut, longest = table
        sym, n = lut[self.peek(longest)]
        self.read(n)
        return self.read(sym - 1) | 1 << (sym - 1) if sym >= 2 else sym


def rnc_unpack(packed: bytes, where: str) -> bytes:
    """Unpack an RNC method-1 block ("RNC\\x01" header); E2EError naming `where` when a size or
    CRC-16 does not match."""
    if packed[:4] != b"RNC\x01" or len(packed) < 18:
        raise E2EError(f"{where}: not RNC method-1 packed data")
    size, psize, crc_out, crc_in = struct.unpack(">IIHH", packed[4:16])
    chunks = packed[17]
    body = packed[18:18 + psize]
    if len(body) != psize or crc16(body) != crc_in:
        raise E2EError(f"{where}: packed data damaged (length or CRC-16 does not match its "
                       "header); reinstall the package")
    bits = _Bits(packed, 18)
    bits.read(2)  # lock and key flags, unused here
    out = bytearray()
    for _ in range(chunks):
        raw, dist, length = bits.table(), bits.table(), bits.table()
        count = bits.read(16)
        for i in range(count):
            n = bits.value(raw)
            if n:  # literal bytes sit between the words of the bit stream
                out += packed[bits.pos:bits.pos + n]
                bits.pos += n
            if i == count - 1:
                break
            back, n = bits.value(dist) + 1, bits.value(length) + 2
            if back > len(out):
                raise E2EError(f"{where}: packed data refers before its start; reinstall")
            start = len(out) - back
            if back >= n:
                out += out[start:start + n]
            else:  # overlapping copy repeats the last `back` bytes
                out += (out[start:] * (n // back + 1))[:n]
    if len(out) != size or crc16(bytes(out)) != crc_out:
        raise E2EError(f"{where}: unpacked {len(out)} bytes (header: {size}) or CRC-16 does "
                       "not match: damaged data")
    return bytes(out)


@dataclass(frozen=True)
class Clip:
    text_no: int  # the game's text number: section << 12 | index
    text: str  # English (UK) text, as written (capitals mark emphasis)
    speaker: str  # the game section, "section0" ... (see the module doc)

    @property
    def file_no(self) -> int:
        return speech_file(self.text_no)


def speech_file(text_no: int) -> int:
    return SPEECH_FILE + SPEECH_BASE[text_no >> 12] + (text_no & 0xFFF)


def text_of_speech(file_no: int) -> int | None:
    """The text number a speech file says (the inverse of speech_file), None when outside."""
    k = file_no - SPEECH_FILE
    for s in range(SECTIONS - 1, -1, -1):
        if k >= SPEECH_BASE[s]:
            return s << 12 | (k - SPEECH_BASE[s]) if k - SPEECH_BASE[s] < 0x1000 else None
    return None


class Disk:
    """sky.dnr + sky.dsk: files by number, texts by language, speech by text number."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else game_dir()
        dnr, dsk = self.folder / "sky.dnr", self.folder / "sky.dsk"
        if not dnr.exists() or not dsk.exists():
            raise DatasetMissing(f"Beneath a Steel Sky (looked for {dnr} and {dsk})", INSTALL)
        d = dnr.read_bytes()
        (n,) = struct.unpack("<I", d[:4])
        if n < 1 or len(d) < 4 + 8 * n:
            raise E2EError(f"{dnr}: {len(d)} bytes cannot hold its {n} entries; reinstall")
        self.entries: dict[int, tuple[int, int]] = {}  # file -> (offset, size and flags)
        for i in range(n):
            e = d[4 + 8 * i:12 + 8 * i]
            num, off, flags = struct.unpack("<H", e[:2])[0], int.from_bytes(e[2:5], "little"), \
                int.from_bytes(e[5:8], "little")
            self.entries[num] = ((off & 0x7FFFFF) << (4 if off >> 23 & 1 else 0), flags)
        self.dsk = dsk.read_bytes()

    def raw(self, num: int) -> tuple[bytes, int]:
        if num not in self.entries:
            raise E2EError(f"{self.folder}/sky.dnr has no file {num}")
        off, flags = self.entries[num]
        data = self.dsk[off:off + (flags & 0x3FFFFF)]
        if len(data) != flags & 0x3FFFFF:
            raise E2EError(f"{self.folder}/sky.dsk: file {num} runs past the end; reinstall")
        return data, flags

    def payload(self, num: int) -> bytes:
        """File `num` without the 22-byte header, unpacked if packed."""
        data, flags = self.raw(num)
        if len(data) < HEADER:
            raise E2EError(f"{self.folder}/sky.dsk: file {num} is {len(data)} bytes, shorter "
                           "than its header; reinstall")
        flag, total = struct.unpack("<H", data[:2])[0], struct.unpack("<H", data[12:14])[0]
        if not flags >> 23 & 1 and flag & 0x80:
            return rnc_unpack(data[HEADER:], f"{self.folder}/sky.dsk:file {num}")
        return data[HEADER:max((flag & 0xFF00) << 8 | total, HEADER)]

    def speech_files(self) -> list[int]:
        return sorted(n for n in self.entries if SPEECH_FILE <= n < SPEECH_FILE + 10_000)

    def section(self, language: int, section: int) -> dict[int, bytes]:
        """Index within the section -> text bytes (codes above 0x7F kept as bytes)."""
        num = TEXT_FILE + SECTIONS * language + section
        data, _ = self.raw(num)
        return decode_section(data, f"{self.folder}/sky.dsk:file {num}")

    def texts(self, language: int) -> dict[int, str]:
        """Text number -> text of `language` (ENGLISH, US_ENGLISH or SPANISH)."""
        out = {}
        for s in range(SECTIONS):
            for i, raw in self.section(language, s).items():
                out[s << 12 | i] = spanish(raw) if language == SPANISH else raw.decode("latin-1")
        return out

    def clips(self) -> list[Clip]:
        """Every speech file with its English line (files whose text number has no text are
        left out)."""
        english = self.texts(ENGLISH)
        out = []
        for f in self.speech_files():
            t = text_of_speech(f)
            if t is not None and english.get(t, "").strip():
                out.append(Clip(t, english[t].strip(), f"section{t >> 12}"))
        return out

    def audio(self, text_no: int) -> tuple[np.ndarray, int]:
        """(float32 samples in [-1, 1), 11,025) of text `text_no`'s speech."""
        raw = np.frombuffer(self.payload(speech_file(text_no)), dtype=np.uint8)
        return (raw.astype(np.float32) - 128.0) / 128.0, RATE


def decode_section(data: bytes, where: str) -> dict[int, bytes]:
    """Every text of one section file (see the module doc)."""
    codes = _codes()
    skip_at, bits_at = struct.unpack("<HH", data[:4])
    blocks = struct.unpack(f"<{(skip_at - 4) // 2}H", data[4:skip_at])
    out: dict[int, bytes] = {}
    block_start = 0
    for b, block_len in enumerate(blocks):
        pos = block_start
        for k in range(32):
            if k:
                skip = data[skip_at + 32 * b + k - 1] if skip_at + 32 * b + k - 1 < bits_at \
                    else 0
                pos += (skip & 0x7F) << 3 if skip & 0x80 else skip
            text = _decode_text(data, bits_at * 8 + 2 * pos, codes)
            if text is None:
                break
            out[32 * b + k] = text
        block_start += block_len
    if not out:
        raise E2EError(f"{where}: no text decodes; reinstall the package")
    return out


def _decode_text(data: bytes, bit: int, codes: dict[str, int]) -> bytes | None:
    """The NUL-terminated text whose code starts at `bit` (MSB first), None if it runs off."""
    out, code = bytearray(), ""
    end = len(data) * 8
    while bit < end:
        code += "1" if data[bit >> 3] >> (7 - (bit & 7)) & 1 else "0"
        bit += 1
        sym = codes.get(code)
        if sym is None:
            if len(code) > 16:
                return None
            continue
        if sym == 0:
            return bytes(out)
        out.append(sym)
        code = ""
    return None


def spoken_text(text: str) -> str:
    """An English line as a transcript: quote marks (`...' and '...') out, apostrophes inside
    words (it's, o'clock) kept; capitals (emphasis) are left to the transcript's lower-casing."""
    return re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", text.replace("`", " "))


def spanish(raw: bytes) -> str:
    return "".join(SPANISH_CHARS.get(b, chr(b)) for b in raw)


def translations(disk: Disk | None = None) -> list[tuple[int, str, str]]:
    """(text number, English, Spanish) for every text both languages have (the game's own
    translation of each line). Placeholders ("?", "Dummy message") and texts left the same in
    both (names, the game's filler strings of random letters) are left out."""
    disk = disk or Disk()
    en, es = disk.texts(ENGLISH), disk.texts(SPANISH)
    pairs = [(t, en[t].strip(), es[t].strip()) for t in sorted(en) if t in es]
    return [(t, e, s) for t, e, s in pairs if re.search("[A-Za-z]", e) and s and e != s
            and not s.lower().startswith("dummy")]
