from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:
    """Uploaded catalog files go to a temporary folder, not the project's var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
