"""Exit 0 when this Python already has everything pyproject.toml asks for (with `--extra dev`, the dev tools too)
and the project itself is installed; 1 otherwise. `make demo` runs pip only when this says something is missing
(pip resolving an environment that is complete already takes a minute and more on a busy machine).

Needs `packaging` (pip's own dependency); without it, it answers 1 and pip runs.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path


def missing(pyproject: Path, *, extras: list[str]) -> list[str]:
    """The requirements of the project (and of these extras) this Python does not satisfy."""
    from packaging.requirements import Requirement

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *(r for extra in extras for r in project["optional-dependencies"][extra])]
    unmet = []
    for text in [project["name"], *wanted]:
        requirement = Requirement(text)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(text)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{text} (have {installed})")
    return unmet


if __name__ == "__main__":
    extras = [sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--extra"]
    try:
        unmet = missing(Path(__file__).resolve().parents[1] / "pyproject.toml", extras=extras)
    except ImportError:
        sys.exit(1)
    for requirement in unmet:
        print(f"missing: {requirement}")
    sys.exit(1 if unmet else 0)
