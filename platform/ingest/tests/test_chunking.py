"""Cutting uploads into chunks, and unpacking gzip uploads within bounds: pure, on files in memory."""

from __future__ import annotations

import gzip
import io
import itertools
import zlib

import pytest

from ingest import chunking
from ingest.processing import read_lines
from ingest.validation import MAX_EVENT_BYTES

LIMITS = chunking.Limits(max_bytes=1 << 30, max_ratio=100, ratio_after=1 << 20)


def _lines_of_plain(body: bytes, spans: list[chunking.ChunkSpan]) -> list[tuple[int, bytes]]:
    file = io.BytesIO(body)
    return [line for s in spans for line in read_lines(file, start=s.start, end=s.end, first_line=s.first_line)]


def _lines_of_packed(packed: bytes, spans: list[chunking.ChunkSpan]) -> list[tuple[int, bytes]]:
    return [
        line
        for s in spans
        for line in chunking.packed_lines(packed[s.start : s.end], first_line=s.first_line)
        if line[1]  # a chunk's last line end leaves an empty piece after it: blank lines are not lines
    ]


def _body(lines: int) -> bytes:
    return b"".join(b'{"id":"e%d","pad":"%s"}\n' % (n, b"x" * (n % 50)) for n in range(lines))


def test_a_gzip_upload_is_packed_again_one_member_per_chunk_with_the_same_lines_and_numbers() -> None:
    body = _body(3000) + b"\n\n" + _body(100) + b"no line end"
    source = io.BytesIO(gzip.compress(body[:50_000]) + gzip.compress(body[50_000:]))  # two members, as cat makes
    target = io.BytesIO()

    spans, failure = chunking.repack(source, target, chunk_bytes=8_000, limits=LIMITS)

    assert failure == ""
    assert len(spans) > 5
    assert spans[0].start == 0 and all(a.end == b.start for a, b in itertools.pairwise(spans))
    packed = target.getvalue()
    assert all(packed[s.start : s.start + 2] == chunking.GZIP_MAGIC for s in spans)
    expected = [(n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line]
    assert _lines_of_packed(packed, spans) == expected
    plain_spans = chunking.plain_spans(io.BytesIO(body), chunk_bytes=8_000)
    assert [line for line in _lines_of_plain(body, plain_spans) if line[1]] == expected


def test_a_gzip_bomb_is_refused_after_the_first_megabytes_whatever_it_holds() -> None:
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb") as writer:
        for _ in range(64):
            writer.write(b"\n" * (1 << 20))  # 64 MiB of line ends: 64 kB compressed
    bomb.seek(0)
    target = io.BytesIO()
    with pytest.raises(chunking.UnpackRefused, match=r"expands more than 100:1 .* decompression bomb"):
        chunking.repack(bomb, target, chunk_bytes=1 << 20, limits=LIMITS)
    assert len(target.getvalue()) < 1 << 20


def test_decompressed_bytes_are_bounded_even_at_a_plausible_ratio() -> None:
    source = io.BytesIO(gzip.compress(_body(20_000)))
    limits = chunking.Limits(max_bytes=100_000, max_ratio=100, ratio_after=1 << 20)
    with pytest.raises(chunking.UnpackRefused, match="expands beyond 100,000 bytes"):
        chunking.repack(source, io.BytesIO(), chunk_bytes=10_000, limits=limits)


def test_one_compressed_block_never_inflates_all_at_once() -> None:
    """A single 1 MiB read of a bomb holds about a gigabyte: it comes out a block at a time."""
    data = zlib.compressobj(9, wbits=31)
    member = data.compress(b"\n" * (256 << 20)) + data.flush()  # 256 MiB inside 256 kB
    inflater = chunking.Inflater(io.BytesIO(member), limits=chunking.Limits(1 << 40, 10**9, 0))
    sizes = [len(block) for block in inflater.blocks()]
    assert max(sizes) <= chunking.BLOCK_BYTES
    assert sum(sizes) == 256 << 20


def test_a_damaged_gzip_keeps_what_came_before_the_damage_and_says_why() -> None:
    whole = gzip.compress(_body(5000))
    cut = io.BytesIO(whole[: len(whole) // 2])
    target = io.BytesIO()
    spans, failure = chunking.repack(cut, target, chunk_bytes=8_000, limits=LIMITS)
    assert failure == "the gzip file is cut short; the lines before the cut were processed"
    lines = _lines_of_packed(target.getvalue(), spans)
    assert 1000 < len(lines) < 5000
    assert lines[:-1] == [(n, line) for n, line in enumerate(_body(5000).split(b"\n"), start=1)][: len(lines) - 1]


def test_binary_data_is_refused_at_once() -> None:
    with pytest.raises(chunking.UnpackRefused, match="binary data"):
        chunking.repack(io.BytesIO(gzip.compress(b"\x00" * 100_000)), io.BytesIO(), chunk_bytes=8_000, limits=LIMITS)
    with pytest.raises(chunking.UnpackRefused, match="binary data"):
        chunking.plain_spans(io.BytesIO(b'{"id": 1}\n\x00\x01'), chunk_bytes=8_000)


def test_a_line_without_end_is_cut_to_what_refuses_it_and_the_lines_after_it_keep_their_numbers() -> None:
    body = b'{"id":"a"}\n' + b"y" * (3 * chunking.BLOCK_BYTES) + b'\n{"id":"b"}\n'
    target = io.BytesIO()
    permissive = chunking.Limits(max_bytes=1 << 30, max_ratio=10**6, ratio_after=0)
    spans, _failure = chunking.repack(io.BytesIO(gzip.compress(body)), target, chunk_bytes=1000, limits=permissive)
    packed_lines = _lines_of_packed(target.getvalue(), spans)
    assert [(n, len(line)) for n, line in packed_lines] == [(1, 10), (2, MAX_EVENT_BYTES + 1), (3, 10)]
    assert len(target.getvalue()) < 2 * MAX_EVENT_BYTES
    plain_lines = _lines_of_plain(body, chunking.plain_spans(io.BytesIO(body), chunk_bytes=1000))
    assert [(n, len(line)) for n, line in plain_lines if line] == [(1, 10), (2, MAX_EVENT_BYTES + 1), (3, 10)]
