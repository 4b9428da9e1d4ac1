"""Shoppers' entry tokens at rest: only their hash is kept, wherever a token arrives after registration.

An entry token opens a store's gate and charges its shopper's card, so it is shown once (when the shopper
registers) and never stored: the shopper table keeps its SHA-256, ingest replaces the `shopper` of every
`session.started` by that hash before the event is stored, and visits carry the hash. A token and its
shopper are matched by hashing the token (a 256-bit random secret needs no slow hash).
"""

from __future__ import annotations

import hashlib
import re

ENTRY_TOKEN_PREFIX = "shp_"  # noqa: S105 — a prefix, not a secret
ENTRY_TOKEN = re.compile(ENTRY_TOKEN_PREFIX + r"[A-Za-z0-9_-]+")  # the prefix and what token_urlsafe writes


def entry_token_hash(token: str) -> str:
    """The SHA-256 of an entry token, in hex: what the shopper table, events and visits keep."""
    return hashlib.sha256(token.encode()).hexdigest()


def entry_tokens_hidden(text: str) -> str:
    """`text` with everything shaped like an entry token (or the start of one) replaced by its hash."""
    if ENTRY_TOKEN_PREFIX not in text:
        return text
    return ENTRY_TOKEN.sub(lambda found: entry_token_hash(found.group()), text)
