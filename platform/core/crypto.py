"""Secrets at rest (tenants' Stripe keys, webhook secrets): Fernet with a key from the environment."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key (FIELD_ENCRYPTION_KEY changed) or is corrupt."""


@cache
def _fernet(key: str) -> Fernet:
    if not key:
        # Embedded mode: derive a key from SECRET_KEY so a laptop needs no extra variable.
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest()).decode()
    return Fernet(key.encode())


def encrypt(plain: str) -> str:
    """Encrypt a secret for storage; the empty string stays empty."""
    if not plain:
        return ""
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable("A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY.") from error
