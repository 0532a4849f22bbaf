"""Strom's configuration: loaded once at the edge, passed down section by section.

Sources, later ones winning:

1. ``strom.toml`` (the file named with ``-c``); relative paths in it are relative to its folder.
2. ``profiles/*.toml`` next to it (folder set by ``[paths] profiles``): one file per charge point.
3. ``relay_config/*.toml`` (folder set by ``[paths] relay_config``): nostr relays.
4. Environment variables ``STROM_<SECTION>__<KEY>`` (e.g. ``STROM_SERVER__PORT=8081``,
   ``STROM_STORAGE__DATABASE_URL=postgresql+asyncpg://…``). A value is read as a TOML value
   when it parses as one (numbers, booleans, arrays) and as a string otherwise.
5. On Umbrel, its LND (:mod:`strom.umbrel`): Umbrel's ``APP_LIGHTNING_NODE_*`` variables
   replace the default fake backend (never a configured ``lnd`` or ``lnbits`` section, nor a
   ``STROM_LIGHTNING__BACKEND`` set in the environment).

Any mistake becomes one :class:`~strom_core.errors.ConfigError` whose message names the file (or
variable), the key, what was expected and what was found. The sections themselves, with their
defaults, are in :mod:`strom_core.config`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from strom.umbrel import umbrel_lightning_section
from strom_core.config import (
    PathsConfig,
    ProfileConfig,
    RelayConfig,
    StromConfig,
    require_ocpp_password,
)
from strom_core.errors import ConfigError

# the model lives in the core
__all__ = ["StromConfig", "load_config", "load_profile", "require_ocpp_password"]


# --- loading -----------------------------------------------------------------------------------

_TOP_SECTIONS = (
    "server",
    "storage",
    "ocpp",
    "tls",
    "sessions",
    "nostr",
    "retention",
    "paths",
    "logging",
    "rates",
    "cluster",
    "ocpi",
    "lightning",
)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error(source: str, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in (*prefix, *err["loc"]))
    expected = err["msg"]
    if err["type"] == "missing":
        return ConfigError(f"{source}: key '{loc}' is required but missing")
    if err["type"] == "extra_forbidden":
        return ConfigError(f"{source}: unknown key '{loc}' (check the spelling)")
    found = _describe(err.get("input"))
    return ConfigError(f"{source}: key '{loc}': {expected}; found {found}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: not readable (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith("STROM_") or "__" not in name:
            continue
        section, _, key = name[len("STROM_") :].lower().partition("__")
        if section not in _TOP_SECTIONS or not key:
            continue
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        overrides.setdefault(section, {})[key] = value
    return overrides


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def load_profile(path: Path) -> ProfileConfig:
    """One charger's profile file, read and checked as at start (its id is the file's stem).

    Raises:
        ConfigError: the file cannot be read, is not valid TOML or not a valid profile.
    """
    data = _read_toml(path)
    try:
        profile = ProfileConfig.model_validate(data)
    except ValidationError as exc:
        raise _error(str(path), exc) from None
    if path.stem != profile.id:
        raise ConfigError(
            f"{path}: key 'id': expected the file name's stem {path.stem!r}; found {profile.id!r}"
        )
    return profile


def _load_profiles(folder: Path) -> tuple[ProfileConfig, ...]:
    if not folder.is_dir():
        return ()
    return tuple(load_profile(path) for path in sorted(folder.glob("*.toml")))


def _load_relays(folder: Path) -> tuple[RelayConfig, ...]:
    relays: list[RelayConfig] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            data = _read_toml(path)
            entries = data.get("relays", [])
            if not isinstance(entries, list):
                raise ConfigError(f"{path}: key 'relays': expected an array of tables")
            unknown = set(data) - {"relays"}
            if unknown:
                raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'")
            for index, entry in enumerate(entries):
                try:
                    relays.append(RelayConfig.model_validate(entry))
                except ValidationError as exc:
                    raise _error(str(path), exc, ("relays", index)) from None
    return tuple(relays) or (RelayConfig(url="embedded"),)


def _umbrel_lightning(
    data: dict[str, Any], overrides: Mapping[str, Mapping[str, Any]], env: Mapping[str, str]
) -> None:
    """On Umbrel, its LND replaces the default fake backend (never one chosen by the operator)."""
    lightning = data.get("lightning", {})
    if not isinstance(lightning, dict) or lightning.get("backend", "fake") != "fake":
        return
    if "backend" in overrides.get("lightning", {}):
        return  # STROM_LIGHTNING__BACKEND=fake: the operator's explicit choice
    section = umbrel_lightning_section(env)
    if section is not None:
        data["lightning"] = section


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> StromConfig:
    """Load and validate the whole configuration.

    Args:
        path: the ``strom.toml`` file.
        environ: environment variables (defaults to ``os.environ``) for ``STROM_*`` overrides.

    Returns:
        The frozen configuration, with relative paths resolved against the file's folder.

    Raises:
        ConfigError: with one readable line naming the file, key, expectation and finding.
    """
    path = Path(path).absolute()
    data = _read_toml(path)
    base = path.parent
    unknown = set(data) - set(_TOP_SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section '{sorted(unknown)[0]}'")
    env = os.environ if environ is None else environ
    overrides = _env_overrides(env)
    for section, values in overrides.items():
        current = data.setdefault(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"{path}: key '{section}': expected a table")
        current.update(values)
    _umbrel_lightning(data, overrides, env)
    try:
        config = StromConfig.model_validate({**data, "config_path": path})
    except ValidationError as exc:
        raise _error(f"{path} (or STROM_* environment)", exc) from None
    storage = config.storage.model_copy(
        update={"data_dir": _resolve(base, config.storage.data_dir)}
    )
    paths = PathsConfig(
        profiles=_resolve(base, config.paths.profiles),
        relay_config=_resolve(base, config.paths.relay_config),
    )
    ids: dict[str, str] = {}
    profiles = _load_profiles(paths.profiles)
    for profile in profiles:
        other = ids.get(profile.id.casefold())
        if other is not None:
            raise ConfigError(
                f"{paths.profiles}: charger ids {other!r} and {profile.id!r} differ only in "
                "case; lightning addresses and web addresses do not tell them apart"
            )
        ids[profile.id.casefold()] = profile.id
    return config.model_copy(
        update={
            "storage": storage,
            "paths": paths,
            "profiles": profiles,
            "relays": _load_relays(paths.relay_config),
        }
    )
