"""The signature, checked with the very recipe docs/webhooks.md gives licensees (no database)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billing.webhooks import signing

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
SECRET = "whsec_test-secret"
BODY = b'{"id":"e1","type":"receipt.issued","data":{"total":1234}}'
NOW = 1_767_225_600


def documented_verify() -> Callable[..., bool]:
    """`verify_openaisle_signature` exactly as the docs print it, compiled from the Markdown."""
    text = DOCS.read_text()
    found = re.search(r"<!-- verify-recipe -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/webhooks.md lost its verification recipe"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 — our own docs
    verify: Callable[..., bool] = namespace["verify_openaisle_signature"]
    return verify


@pytest.mark.parametrize("verify", [documented_verify(), None], ids=["docs recipe", "signing.verify"])
def test_signature_verifies_and_nothing_else_does(verify: Callable[..., bool] | None) -> None:
    def check(secret: str, header: str, body: bytes, now: int = NOW) -> bool:
        if verify is None:
            return signing.verify(secret=secret, header=header, body=body, now=now)
        return verify(secret, header, body, now)

    header = signing.signature_header(secret=SECRET, timestamp=NOW, body=BODY)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert check(SECRET, header, BODY)
    assert check(SECRET, header, BODY, now=NOW + 299)
    assert not check(SECRET, header, BODY, now=NOW + 301), "a replay after 5 minutes is refused"
    assert not check("whsec_other", header, BODY), "another secret"
    assert not check(SECRET, header, BODY + b" "), "a changed body"
    assert not check(SECRET, header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, now=NOW), "a moved timestamp"
    assert not check(SECRET, "garbage", BODY)
    assert not check(SECRET, f"t={NOW}", BODY)
    other = signing.signature(secret="whsec_old", timestamp=NOW, body=BODY)
    assert check(SECRET, f"{header},v1={other}", BODY), "one matching v1 among several is enough"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(secret=SECRET, timestamp=NOW, body=BODY) == expected


def test_new_secrets_are_long_random_and_prefixed() -> None:
    secrets = {signing.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(s) >= 6 + 43 for s in secrets)
