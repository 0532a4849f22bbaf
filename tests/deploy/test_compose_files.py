"""The compose files validate against the Compose specification's JSON schema, and say what
the deployment promises (named volumes, the mounted examples, Umbrel's proxy and LND)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.compose import (
    COMPOSE,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPO,
    UMBREL_COMPOSE,
    UMBREL_MANIFEST,
    dockerfile_cmd,
    env_file,
    load_yaml,
)

SCHEMA = Path(__file__).parent / "vectors" / "compose-spec.json"
SCHEMA_SHA256 = "1f91e091f16b2dd50ab8860e02bb391d22df553d91c145eacedb1b6eff9c3f0e"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256  # the vendored copy
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"].rstrip("#/").endswith("draft-07/schema")  # named without the "#"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", [COMPOSE, UMBREL_COMPOSE], ids=["compose", "umbrel"])
def test_the_compose_file_is_valid_compose(
    path: Path, validator: jsonschema.protocols.Validator
) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(load_yaml(path))
    ]
    assert errors == []


def test_the_schema_catches_a_broken_compose_file(
    validator: jsonschema.protocols.Validator,
) -> None:
    broken: dict[str, Any] = load_yaml(COMPOSE)
    broken["services"]["strom"]["restart"] = ["always"]  # a list where a string belongs
    broken["services"]["strom"]["volumez"] = []
    assert len(list(validator.iter_errors(broken))) >= 2


def test_strom_and_postgresql_keep_their_data_in_named_volumes_and_mount_the_examples() -> None:
    compose = load_yaml(COMPOSE)
    services = compose["services"]
    assert set(compose["volumes"]) >= {"strom-home", "postgres-data"}
    strom = services["strom"]["volumes"]
    assert "strom-home:/srv/strom" in strom
    assert "./profiles:/srv/strom/profiles" in strom
    assert "./relay_config:/srv/strom/relay_config:ro" in strom
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert services["strom"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["relay"]["profiles"] == ["relay"]  # optional
    relay_config = services["relay"]["volumes"][0].split(":")[0]
    assert (REPO / relay_config).is_file()
    for mounted in ("profiles", "relay_config"):
        assert (REPO / mounted).is_dir()
    assert dockerfile_cmd() == ["strom", "container"]
    assert "USER strom" in DOCKERFILE.read_text()
    assert "HEALTHCHECK" in DOCKERFILE.read_text()


def test_the_env_example_names_only_settings_strom_knows() -> None:
    from strom.config import load_config
    from strom.scaffold import initialise_if_empty

    text = ENV_EXAMPLE.read_text()
    names = {
        line.lstrip("# ").split("=", 1)[0]
        for line in text.splitlines()
        if line.lstrip("# ").startswith("STROM_") and "=" in line
    }
    from pydantic import BaseModel

    from strom_core.config import StromConfig

    defaults = StromConfig()
    # Every section of the configuration (a new one must be added to .env.example too);
    # lightning is a union whose keys depend on the backend (checked by its models).
    sections = {
        name.upper()
        for name in StromConfig.model_fields
        if isinstance(getattr(defaults, name), BaseModel) and name != "lightning"
    }
    assert {"SERVER", "STORAGE", "OCPP", "TLS", "SESSIONS", "LOGGING"} <= sections
    for section in sections | {"LIGHTNING"}:
        assert any(name.startswith(f"STROM_{section}__") for name in names), section
    assert "STROM_SETUP_PASSWORD" in names
    assert "STROM_MASTER_KEY" in names
    # Every key of every section is listed.
    for section in sections:
        for key in type(getattr(defaults, section.lower())).model_fields:
            assert f"STROM_{section}__{key.upper()}" in names, (section, key)
    # What is set (not commented out) loads.
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        initialise_if_empty(Path(folder))
        active = {k: v for k, v in env_file(ENV_EXAMPLE).items() if k.startswith("STROM_")}
        load_config(Path(folder) / "strom.toml", environ=active)


def test_the_umbrel_app_depends_on_lightning_and_takes_lnd_and_its_password_from_umbrel() -> None:
    manifest = load_yaml(UMBREL_MANIFEST)
    assert manifest["manifestVersion"] == 1
    assert manifest["id"] == "strom"
    assert manifest["dependencies"] == ["lightning"]
    assert manifest["deterministicPassword"] is True
    compose = load_yaml(UMBREL_COMPOSE)
    proxy = compose["services"]["app_proxy"]["environment"]
    assert proxy["APP_HOST"] == "strom_web_1"
    web = compose["services"]["web"]
    assert int(proxy["APP_PORT"]) == 8080
    assert "${APP_DATA_DIR}/data:/srv/strom" in web["volumes"]
    assert "${APP_LIGHTNING_NODE_DATA_DIR}:/lnd:ro" in web["volumes"]
    env = web["environment"]
    assert env["APP_LIGHTNING_NODE_IP"] == "$APP_LIGHTNING_NODE_IP"
    assert env["APP_LIGHTNING_NODE_REST_PORT"] == "$APP_LIGHTNING_NODE_REST_PORT"
    assert env["STROM_LND_DIR"] == "/lnd"
    assert env["STROM_SETUP_PASSWORD"] == "$APP_PASSWORD"
    assert (UMBREL_COMPOSE.parent / "data").is_dir()
