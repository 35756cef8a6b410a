"""The two packages of this repository: the product and the local Slack workspace beside it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def test_licenses_are_spdx_strings_so_setuptools_prints_no_deprecation_banner() -> None:
    for path in (REPO / "pyproject.toml", REPO / "localslack" / "pyproject.toml"):
        project = pyproject(path)
        assert project["project"]["license"] == "MIT", path
        requires = " ".join(project["build-system"]["requires"])
        assert re.search(r"setuptools>=(7[7-9]|[89]\d)", requires), path


def test_the_local_workspace_is_not_part_of_the_product() -> None:
    found = pyproject(REPO / "pyproject.toml")["tool"]["setuptools"]["packages"]["find"]
    assert not any("localslack" in pattern for pattern in found["include"])
    assert "localslack" in (REPO / ".dockerignore").read_text().split()
    assert not list((REPO / "provision").glob("localslack/**/*.py"))
    # …but the venv of `make demo` and `make test` has it.
    assert "-e ./localslack" in (REPO / "Makefile").read_text()
