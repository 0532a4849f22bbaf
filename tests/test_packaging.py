"""The package metadata builds without deprecation warnings (PEP 639 license metadata)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_is_an_spdx_expression_with_its_file_and_a_setuptools_that_reads_it() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]

    # A TOML table here makes setuptools print a deprecation warning at every install.
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    requires = " ".join(pyproject["build-system"]["requires"])
    found = re.search(r"setuptools>=(\d+)", requires)
    assert found is not None
    assert int(found[1]) >= 77  # the first setuptools that accepts SPDX expressions
