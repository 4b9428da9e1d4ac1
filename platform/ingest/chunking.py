"""An uploaded stream's file, as the chunks read it: cut at line ends, and a gzip upload unpacked within bounds.

A plain NDJSON upload is read where it is stored: each chunk is a byte range of it, ending at a line end.

A gzip upload is inflated once, streaming, and written again as one gzip member per chunk (`repack`): a chunk
task then reads its member and inflates it alone, on any worker, and nothing is ever stored decompressed. The
inflating is bounded — in decompressed bytes (`max_bytes`) and in the ratio of decompressed to compressed bytes
(`max_ratio`, once `ratio_after` bytes have come out: event streams compress about 9:1) — so that a small upload
cannot expand into gigabytes; a stream that breaks a bound is refused whole (`UnpackRefused`). A damaged or cut
gzip keeps what inflated before the damage, and says why it stopped.

Lines longer than an event may be are cut to their first `MAX_EVENT_BYTES + 1` bytes (enough to refuse them,
keeping their start), so that memory holds at most a chunk and a block whatever the file holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ingest.validation import MAX_EVENT_BYTES

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 20
SOURCE_READ_BYTES = 1 << 16  # a bomb's 64 kB hold 64 MB: the ratio is checked after each
SCAN_BYTES = 1 << 16
BINARY_SNIFF_BYTES = 8192
PACK_LEVEL = 1  # the fastest: a chunk is packed once and read once
NOT_TEXT = "This is not an NDJSON text file: it contains binary data (NUL bytes)."


class UnpackRefused(Exception):
    """The upload cannot be processed at all; `reason` says why, in words for the person who sent it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk: bytes [start, end) of the file the chunks read, and the number of its first line."""

    start: int
    end: int
    first_line: int


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_ratio: int
    ratio_after: int


class Inflater:
    """The decompressed blocks of a gzip file (its members one after another), each at most BLOCK_BYTES, never
    more than the limits allow. `failure` says why it stopped early on damaged or cut data ("" when whole)."""

    def __init__(self, source: BinaryIO, *, limits: Limits) -> None:
        self._source = source
        self._limits = limits
        self.read = 0  # compressed bytes consumed
        self.written = 0  # decompressed bytes produced
        self.failure = ""

    def blocks(self) -> Iterator[bytes]:
        inflater, fed = zlib.decompressobj(wbits=31), False
        while block := self._source.read(SOURCE_READ_BYTES):
            self.read += len(block)
            while block:
                try:
                    out = inflater.decompress(block, BLOCK_BYTES)
                except zlib.error as error:
                    self.failure = f"the gzip file is damaged ({error}); the lines before the damage were processed"
                    return
                fed = True
                block = inflater.unconsumed_tail
                if out:
                    self._count(len(out))
                    yield out
                if inflater.eof:
                    block = inflater.unused_data + block
                    inflater, fed = zlib.decompressobj(wbits=31), False
        out = inflater.flush()
        if out:
            self._count(len(out))
            yield out
        if fed and not inflater.eof:
            self.failure = "the gzip file is cut short; the lines before the cut were processed"

    def _count(self, produced: int) -> None:
        self.written += produced
        limits = self._limits
        if self.written > limits.max_bytes:
            raise UnpackRefused(
                f"The gzip file expands beyond {limits.max_bytes:,} bytes, the most a stream may hold; "
                "split it into smaller files. Nothing was processed."
            )
        if self.written > limits.ratio_after and self.written > limits.max_ratio * max(self.read, 1):
            raise UnpackRefused(
                f"The gzip file expands more than {limits.max_ratio}:1 ({self.written:,} bytes from the first "
                f"{self.read:,}), which event streams never do: it was refused as a decompression bomb. "
                "Nothing was processed."
            )


def bounded_lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The data of `blocks` again, in pieces that end at line ends, with every line longer than an event may be
    cut to its first MAX_EVENT_BYTES + 1 bytes (its line end kept): a piece is at most a block and a line."""
    pending = bytearray()
    overlong = False  # inside a line already cut: its bytes are dropped up to its line end
    for block in blocks:
        if overlong:
            end = block.find(b"\n")
            if end < 0:
                continue
            block, overlong = block[end:], False
        pending += block
        last = pending.rfind(b"\n")
        if last >= 0:
            yield bytes(pending[: last + 1])
            del pending[: last + 1]
        if len(pending) > MAX_EVENT_BYTES:
            del pending[MAX_EVENT_BYTES + 1 :]
            overlong = True
    if pending:
        yield bytes(pending)


def repack(source: BinaryIO, target: BinaryIO, *, chunk_bytes: int, limits: Limits) -> tuple[list[ChunkSpan], str]:
    """Inflate the gzip `source` within `limits` and write it to `target` as one gzip member per chunk of about
    `chunk_bytes` (at line ends). Returns the chunks (byte ranges of `target`) and why it stopped early ("")."""
    inflater = Inflater(source, limits=limits)
    spans: list[ChunkSpan] = []
    body = bytearray()
    line = 1

    def pack(data: bytes) -> None:
        nonlocal line
        packer = zlib.compressobj(PACK_LEVEL, wbits=31)
        member = packer.compress(data) + packer.flush()
        start = target.tell()
        target.write(member)
        spans.append(ChunkSpan(start, start + len(member), line))
        line += data.count(b"\n")

    sniffed = False
    for piece in bounded_lines(inflater.blocks()):
        if not sniffed:
            sniffed = True
            if b"\x00" in piece[:BINARY_SNIFF_BYTES]:
                raise UnpackRefused(NOT_TEXT)
        body += piece
        while len(body) >= chunk_bytes and (end := body.find(b"\n", chunk_bytes - 1)) >= 0:
            pack(bytes(body[: end + 1]))
            del body[: end + 1]
    if body:
        pack(bytes(body))
    return spans, inflater.failure


def plain_spans(file: BinaryIO, *, chunk_bytes: int) -> list[ChunkSpan]:
    """Chunks of a plain NDJSON file: byte ranges of about `chunk_bytes` ending at line ends, found by reading the
    file once and holding at most a chunk of it."""
    if b"\x00" in file.read(BINARY_SNIFF_BYTES):
        raise UnpackRefused(NOT_TEXT)
    spans: list[ChunkSpan] = []
    start, line = 0, 1
    while True:
        file.seek(start)
        body = file.read(chunk_bytes)
        if not body:
            return spans
        end, lines = start + len(body), body.count(b"\n")
        if len(body) == chunk_bytes and not body.endswith(b"\n"):
            while piece := file.read(SCAN_BYTES):  # on to the line end, however long the line
                found = piece.find(b"\n")
                if found >= 0:
                    end, lines = end + found + 1, lines + 1
                    break
                end += len(piece)
        spans.append(ChunkSpan(start, end, line))
        start, line = end, line + lines


def packed_lines(member: bytes, *, first_line: int) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of a chunk packed by `repack` (one gzip member, written here, so bounded)."""
    yield from enumerate(zlib.decompress(member, wbits=31).split(b"\n"), start=first_line)
