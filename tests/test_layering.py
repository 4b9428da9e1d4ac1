"""The kernel (`core`, with `tenants`) imports no feature app: features build on it, never the other way round.

What reads every feature (the consoles' dashboards, platform-wide metrics, the demo command) lives in `console`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"
FEATURE_APPS = {"catalog", "stores", "ingest", "visits", "stock", "service_levels", "disputes", "billing", "console"}


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_kernel_imports_no_feature_app() -> None:
    core = PLATFORM / "core"
    offenders = {}
    for path in sorted(core.rglob("*.py")):
        relative = path.relative_to(core).as_posix()
        if relative.startswith("tests/"):
            continue
        reached = _imported_top_levels(path) & FEATURE_APPS
        if reached:
            offenders[relative] = sorted(reached)
    assert offenders == {}


def test_the_check_sees_a_feature_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from visits.models import Visit\n    import billing.payments\n")
    assert _imported_top_levels(module) == {"visits", "billing"}
