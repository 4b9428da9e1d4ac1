"""The order chunks are sent in: workers taking them one after another work on parts of the file far apart."""

from __future__ import annotations

import pytest

from ingest.services import far_apart


@pytest.mark.parametrize(
    ("chunks", "order"),
    [
        (0, []),
        (1, [0]),
        (2, [0, 1]),
        (5, [0, 3, 1, 4, 2]),
        (6, [0, 3, 1, 4, 2, 5]),
    ],
)
def test_chunks_alternate_between_the_two_halves_of_the_file(chunks: int, order: list[int]) -> None:
    assert far_apart(list(range(chunks))) == order


def test_every_chunk_is_sent_once() -> None:
    ids = [7, 3, 19, 4, 11, 8, 2]
    sent = far_apart(ids)
    assert sorted(sent) == sorted(ids)
    assert all(abs(ids.index(a) - ids.index(b)) >= 3 for a, b in zip(sent[::2], sent[1::2], strict=False))
