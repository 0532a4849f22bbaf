"""Profile files written from the API: edited in place, comments kept, checked by reading back.

An operator's ``profiles/<id>.toml`` is theirs: it has comments and an order. A change from
the API edits the values in place (tomlkit), writes a temporary file next to it and renames
it over the old one (a crash leaves the old or the new file, never half of one), and reads
the result back through the same loader ``strom run`` uses. The OCPP password hash is never
taken from an API body (Strom generates a charger's key when the API creates it, and
``strom charger password`` writes a new one) and never dropped; neither is
``allow_unauthenticated``, which only the operator's own edit of the file sets.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.items import InlineTable, Table

from strom_core.config import CardConfig, ProfileConfig, TariffConfig
from strom_core.errors import ConfigError
from strom_core.ids import check_charger_id

__all__ = ["ProfileFiles"]


def _plain(value: Any) -> Any:
    """A value as TOML writes it: integral Decimals as integers, others as exact floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _merge(table: Any, values: dict[str, Any]) -> None:
    """Set ``values`` into a tomlkit table, keeping the comments of keys that stay."""
    for key in [k for k in table if k not in values]:
        del table[key]
    for key, value in values.items():
        current = table.get(key)
        if isinstance(value, dict) and isinstance(current, Table):
            _merge(current, value)
        else:
            table[key] = value


class ProfileFiles:
    """The folder of profile files.

    Args:
        folder: ``paths.profiles`` of the configuration.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, charger_id: str) -> Path:
        """Where a charger's profile lives.

        Raises:
            ValueError: ``charger_id`` is not a charger id (it could name a path elsewhere).
        """
        return self.folder / f"{check_charger_id(charger_id)}.toml"

    def write_profile(
        self,
        profile: ProfileConfig,
        *,
        password_hash: str | None = None,
        check: Callable[[ProfileConfig], None] | None = None,
    ) -> ProfileConfig:
        """Create or update a profile; the OCPP password on file is kept unless one is given.

        Args:
            profile: the new profile (its ``ocpp.password_hash`` and
                ``ocpp.allow_unauthenticated`` are ignored).
            password_hash: a new OCPP password hash to store; None keeps the one on file.
            check: called with the profile as it will be read back, before anything is
                written; a ConfigError from it leaves the file as it was.

        Returns:
            The profile as ``strom run`` will read it.

        Raises:
            ConfigError: the file cannot be written, does not read back equal, or ``check``
                refused it.
        """
        path = self.path(profile.id)
        document = self._read(path)
        # None is no TOML value: an unset optional key (site_limit_kw) is left out of the file.
        values = _plain(
            profile.model_dump(mode="python", exclude={"ocpp"}, exclude_none=True, by_alias=True)
        )
        ocpp = document.get("ocpp")
        on_file: Any = ocpp if isinstance(ocpp, Table | InlineTable) else {}
        ocpp_values: dict[str, Any] = {
            "password_hash": on_file.get("password_hash", "")
            if password_hash is None
            else password_hash
        }
        if "allow_unauthenticated" in on_file:
            ocpp_values["allow_unauthenticated"] = on_file["allow_unauthenticated"]
        ocpp_values["quirks"] = list(profile.ocpp.quirks)
        values["ocpp"] = ocpp_values
        tariff = document.get("tariff")
        if (
            profile.tariff.dynamic_price is None
            and isinstance(tariff, Table | OutOfOrderTableProxy)
            and "dynamic" in tariff
        ):
            # The API edits the prices in sats only: the file's [tariff.dynamic] stays.
            values["tariff"]["dynamic"] = tariff["dynamic"]
        _merge(document, values)
        return self._replace(path, document, profile.id, check)

    def write_password_hash(self, charger_id: str, password_hash: str) -> ProfileConfig:
        """Set ``[ocpp] password_hash`` of an existing profile, everything else untouched.

        Raises:
            ConfigError: no such profile file, or it cannot be written or read back.
        """
        path, document = self._existing(charger_id)
        ocpp = document.get("ocpp")
        if isinstance(ocpp, Table | InlineTable):
            ocpp["password_hash"] = password_hash
        else:
            document["ocpp"] = {"password_hash": password_hash}
        return self._replace(path, document, charger_id)

    def write_tariff(self, charger_id: str, tariff: TariffConfig) -> ProfileConfig:
        """Replace the ``[tariff]`` table of an existing profile with ``tariff``, all of it.

        Its time-of-use windows and ``[tariff.dynamic]`` are written as ``tariff`` has them
        (none: removed from the file); the comments of the keys that stay are kept.

        Raises:
            ConfigError: no such profile file, or it cannot be written or read back.
        """
        path, document = self._existing(charger_id)
        tariff_table = document.get("tariff")
        values = _plain(tariff.model_dump(mode="python", exclude_none=True, by_alias=True))
        if not values.get("time_of_use"):
            values.pop("time_of_use", None)  # no empty [tariff.time_of_use] header
        # [tariff.dynamic] further down the file makes [tariff] an out-of-order table.
        if isinstance(tariff_table, Table | OutOfOrderTableProxy):
            _merge(tariff_table, values)
        else:
            document["tariff"] = values
        return self._replace(path, document, charger_id)

    def write_site_limit(self, charger_id: str, limit_kw: Decimal | None) -> ProfileConfig:
        """Set (or, with None, remove) ``site_limit_kw`` of an existing profile.

        Raises:
            ConfigError: no such profile file, or it cannot be written or read back.
        """
        path, document = self._existing(charger_id)
        if limit_kw is None:
            document.pop("site_limit_kw", None)
        else:
            document["site_limit_kw"] = _plain(limit_kw)
        return self._replace(path, document, charger_id)

    def write_cards(self, charger_id: str, cards: Sequence[CardConfig]) -> ProfileConfig:
        """Replace the ``[[cards]]`` of an existing profile (none: the key is removed).

        The cards are written in the order given; the rest of the file stays as it was.

        Raises:
            ConfigError: no such profile file, a card listed twice, or the file cannot be
                written or read back.
        """
        path, document = self._existing(charger_id)
        document.pop("cards", None)
        if cards:
            tables = tomlkit.aot()
            for card in cards:
                table = tomlkit.table()
                table["id_tag"] = card.id_tag
                if card.label:
                    table["label"] = card.label
                table["mode"] = card.mode.value
                if card.account:
                    table["account"] = card.account
                tables.append(table)
            document["cards"] = tables
        return self._replace(path, document, charger_id)

    def _existing(self, charger_id: str) -> tuple[Path, tomlkit.TOMLDocument]:
        path = self.path(charger_id)
        if not path.is_file():
            raise ConfigError(f"{path}: no such profile file")
        return path, self._read(path)

    @staticmethod
    def _read(path: Path) -> tomlkit.TOMLDocument:
        if not path.is_file():
            return tomlkit.document()
        try:
            return tomlkit.parse(path.read_text(encoding="utf-8"))
        except (OSError, tomlkit.exceptions.TOMLKitError) as exc:
            raise ConfigError(f"{path}: cannot read the profile: {exc}") from None

    def _replace(
        self,
        path: Path,
        document: tomlkit.TOMLDocument,
        charger_id: str,
        check: Callable[[ProfileConfig], None] | None = None,
    ) -> ProfileConfig:
        text = tomlkit.dumps(document)
        try:
            written = ProfileConfig.model_validate(tomlkit.parse(text).unwrap())
        except (ValidationError, tomlkit.exceptions.TOMLKitError) as exc:
            raise ConfigError(f"{path}: the new profile does not read back: {exc}") from None
        if written.id != charger_id:
            raise ConfigError(f"{path}: the profile's id must be {charger_id!r}")
        if check is not None:
            check(written)
        temporary: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(
                dir=self.folder, prefix=f".{charger_id}.", suffix=".tmp"
            )
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            if path.exists():  # the operator's file keeps its permissions
                os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
            os.replace(temporary, path)
        except OSError as exc:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise ConfigError(f"{path}: cannot write the profile: {exc}") from None
        return written
