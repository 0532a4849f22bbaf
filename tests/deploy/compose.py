"""Reading the deployment files as Docker and Compose would, for the tests (no engine needed)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
UMBREL_COMPOSE = REPO / "umbrel" / "strom" / "docker-compose.yml"
UMBREL_MANIFEST = REPO / "umbrel" / "strom" / "umbrel-app.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines skipped), as Compose reads an env file."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``$VAR`` substitution."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        found = variables.get(name, "")
        if not found and match.group("default") is not None:
            return match.group("default")
        return found

    return _VARIABLE.sub(value, text)


def service_environment(
    compose: Path, service: str, variables: Mapping[str, str]
) -> dict[str, str]:
    """A service's ``environment:`` after interpolation with ``variables``."""
    environment = load_yaml(compose)["services"][service].get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping"
    return {key: interpolate(str(value), variables) for key, value in environment.items()}


def dockerfile_env() -> dict[str, str]:
    """The image's ``ENV KEY=VALUE`` lines."""
    values = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            key, _, value = line[len("ENV ") :].partition("=")
            values[key.strip()] = value.strip()
    return values


def dockerfile_healthcheck() -> list[str]:
    """The command of the image's ``HEALTHCHECK`` (exec form, after its continuation line)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith("HEALTHCHECK ")]
    assert len(lines) == 1, "one HEALTHCHECK"
    command = json.loads(lines[0].split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def dockerfile_cmd() -> list[str]:
    """The image's ``CMD`` (exec form)."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "one CMD"
    command = json.loads(lines[0][len("CMD ") :])
    assert isinstance(command, list)
    return [str(part) for part in command]
