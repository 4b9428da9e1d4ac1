"""`platform/` is a source root, never a package: the standard library's `platform` must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[1]


def test_platform_folder_has_no_init() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_still_imports_with_the_source_root_on_the_path() -> None:
    code = "import platform, stripe, celery; print(platform.system())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"


def test_no_app_or_top_level_package_is_named_like_a_stdlib_module() -> None:
    ours = {config.name.split(".")[0] for config in apps.get_app_configs() if Path(config.path).is_relative_to(ROOT)}
    ours |= {p.name for p in (ROOT / "platform").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert ours, "found no project apps"
    assert not ours & set(sys.stdlib_module_names)
