"""DM commands: the words drivers and operators send a charger, parsed into typed commands.

Drivers (anyone) may send ``stop``, ``status``, ``refund`` and ``help``; the agent applies
them to the session that sender started, and to nothing else. A driver reserves a connector
with ``reserve <minutes> [connector]`` (answered with an invoice for the reservation) and then
sends ``start`` when plugged in, or ``cancel`` to free it. Operators (the configured admin
npubs) may also send ``sessions``, ``enable <connector>``, ``disable <connector>``,
``price <n> sat/kWh``, ``unlock <connector>``, ``reset soft|hard``, ``refund <session>``,
``limit <kW>`` (the charger's site limit; ``limit 0`` or ``limit off`` removes it),
``firmware <url>`` (install firmware from a URL; ``firmware`` alone: the last status the
charger reported) and ``reserve <connector> <minutes> [<card idTag>]`` / ``reserve cancel
<connector>`` (a reservation without payment). For an operator ``reserve`` is always the
operator's form, connector first.
Who is an operator is the caller's knowledge: it passes ``operator=True`` for them.

Parsing is forgiving about form (case, surrounding spaces, a leading ``/`` or ``!`` as bots
use) and strict about meaning: a price needs its unit, a connector is a number, and anything
unclear becomes a :class:`~strom_nostr.errors.CommandError` whose ``reason`` tells the sender
what would have worked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from strom_core.units import UnitError, sat_decimal_to_msat
from strom_nostr.errors import CommandError, CommandNotAllowed, UnknownCommand

__all__ = [
    "MAX_COMMAND_LENGTH",
    "MAX_RESERVE_MINUTES",
    "Cancel",
    "CancelReserve",
    "Command",
    "Disable",
    "Enable",
    "Firmware",
    "Help",
    "Refund",
    "RequestReservation",
    "Reserve",
    "Reset",
    "ResetKind",
    "Sessions",
    "SetLimit",
    "SetPrice",
    "Start",
    "Status",
    "Stop",
    "Unlock",
    "help_text",
    "parse_command",
]

MAX_COMMAND_LENGTH = 200
_MAX_FIRMWARE_COMMAND_LENGTH = 600  # ``firmware <url>``: download URLs can be long
MAX_RESERVE_MINUTES = 1440
"""The longest reservation a DM can ask for (a day); a charger's tariff may allow less."""
_MINUTES = re.compile(r"[1-9][0-9]{0,3}")
_ID_TAG = re.compile(r"[!-~]{1,20}")  # OCPP CiString20, printable ASCII without spaces
_FIRMWARE_URL = re.compile(r"(?:https?|ftps?)://\S{1,500}", re.IGNORECASE)
_CONNECTOR = re.compile(r"[1-9][0-9]?")
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_PRICE_MSAT_PER_KWH = 100_000_000  # 100k sat/kWh: anything above is a typo


class ResetKind(StrEnum):
    """OCPP reset types."""

    SOFT = "soft"
    HARD = "hard"


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop my session (driver)."""


@dataclass(frozen=True, slots=True)
class Status:
    """My session's status (driver) or the charger's (operator)."""


@dataclass(frozen=True, slots=True)
class Help:
    """List the commands this sender may use."""


@dataclass(frozen=True, slots=True)
class Refund:
    """Refund: my session (driver, ``session_id`` None) or the named one (operator)."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sessions:
    """List open sessions (operator)."""


@dataclass(frozen=True, slots=True)
class Enable:
    """Make a connector available (operator)."""

    connector: int


@dataclass(frozen=True, slots=True)
class Disable:
    """Make a connector unavailable (operator)."""

    connector: int


@dataclass(frozen=True, slots=True)
class Unlock:
    """Unlock a connector's cable (operator)."""

    connector: int


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the charger (operator)."""

    kind: ResetKind


@dataclass(frozen=True, slots=True)
class SetPrice:
    """Set the energy price (operator), exact msat per kWh."""

    msat_per_kwh: int


@dataclass(frozen=True, slots=True)
class SetLimit:
    """Set the charger's site limit (operator), whole watts; None removes it."""

    limit_w: int | None


@dataclass(frozen=True, slots=True)
class Firmware:
    """Install firmware from ``location`` (operator); None: show the last firmware status."""

    location: str | None = None


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve a connector without payment (operator), for a card's idTag or an operator tag."""

    connector: int
    minutes: int
    id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class CancelReserve:
    """Cancel the reservation of a connector (operator)."""

    connector: int


@dataclass(frozen=True, slots=True)
class RequestReservation:
    """Reserve a connector, paid (driver): answered with an invoice; None: any free one."""

    minutes: int
    connector: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start charging on my reservation (driver, the payer of the reservation)."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel my reservation (driver, the payer of the reservation)."""


Command = (
    Stop
    | Status
    | Help
    | Refund
    | Sessions
    | Enable
    | Disable
    | Unlock
    | Reset
    | SetPrice
    | SetLimit
    | Firmware
    | Reserve
    | CancelReserve
    | RequestReservation
    | Start
    | Cancel
)

_DRIVER_HELP = (
    "stop - stop your charging session",
    "status - how your session is going",
    "refund - get the refund link for your session",
    "reserve <minutes> [connector] - reserve a connector (answered with an invoice)",
    "start / cancel - start charging on your reservation, or free it",
    "help - this list",
)
_OPERATOR_HELP = (
    "status - the charger's connectors and sessions",
    "sessions - open sessions",
    "enable <connector> / disable <connector> - allow or block a connector",
    "price <n> sat/kWh - set the energy price",
    "unlock <connector> - release a stuck cable",
    "reset soft|hard - restart the charger",
    "limit <kW> - cap the charger's power (limit off: no cap)",
    "firmware <url> - install firmware from a URL (firmware: the last status)",
    "reserve <connector> <minutes> [<card idTag>] - reserve without payment",
    "reserve cancel <connector> - cancel a reservation",
    "refund <session> - refund a session",
    "stop - stop a session you started; help - this list",
)


def help_text(*, operator: bool) -> str:
    """The command list for a driver or an operator, one command per line."""
    return "\n".join(_OPERATOR_HELP if operator else _DRIVER_HELP)


def _connector(args: list[str], word: str) -> int:
    if len(args) != 1 or not _CONNECTOR.fullmatch(args[0]):
        raise CommandError(f"usage: {word} <connector number>, e.g. {word} 1")
    return int(args[0])


def _reset(args: list[str]) -> Reset:
    if len(args) != 1 or args[0].lower() not in ("soft", "hard"):
        raise CommandError("usage: reset soft  or  reset hard")
    return Reset(ResetKind(args[0].lower()))


def _price(args: list[str]) -> SetPrice:
    usage = "usage: price <number> sat/kWh, e.g. price 250 sat/kWh"
    joined = "".join(args).lower()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m?sat)/kwh", joined)
    if match is None:
        raise CommandError(usage)
    number, unit = match.groups()
    try:
        amount = Decimal(number) / (1000 if unit == "msat" else 1)
        msat = sat_decimal_to_msat(amount)
    except (InvalidOperation, UnitError):
        raise CommandError(f"price must be whole msat; {usage}") from None
    if msat > _MAX_PRICE_MSAT_PER_KWH:
        raise CommandError("that price is above 100000 sat/kWh; is it a typo?")
    return SetPrice(msat)


def _limit(args: list[str]) -> SetLimit:
    usage = "usage: limit <kW>, e.g. limit 7.4 (1 to 1000 kW), or limit off"
    if len(args) == 2 and args[1].lower() == "kw":
        args = args[:1]
    text = args[0].lower().removesuffix("kw") if len(args) == 1 else ""
    if text in ("off", "0"):
        return SetLimit(None)
    if not re.fullmatch(r"[0-9]{1,4}(?:\.[0-9]{1,3})?", text):
        raise CommandError(usage)
    watts = int(Decimal(text) * 1000)
    if not 1_000 <= watts <= 1_000_000:
        raise CommandError(usage)
    return SetLimit(watts)


def _firmware(args: list[str]) -> Firmware:
    if not args:
        return Firmware()
    if len(args) != 1 or not _FIRMWARE_URL.fullmatch(args[0]):
        raise CommandError(
            "usage: firmware <url> (http, https, ftp or ftps, up to 500 characters), "
            "or firmware alone for the last status"
        )
    return Firmware(args[0])


def _minutes(text: str, usage: str) -> int:
    if not _MINUTES.fullmatch(text) or int(text) > MAX_RESERVE_MINUTES:
        raise CommandError(f"{usage} (minutes: 1 to {MAX_RESERVE_MINUTES})")
    return int(text)


def _operator_reserve(args: list[str]) -> Reserve | CancelReserve:
    usage = (
        "usage: reserve <connector> <minutes> [<card idTag>], e.g. reserve 1 30, "
        "or reserve cancel <connector>"
    )
    if args and args[0].lower() == "cancel":
        if len(args) != 2 or not _CONNECTOR.fullmatch(args[1]):
            raise CommandError(usage)
        return CancelReserve(int(args[1]))
    if not 2 <= len(args) <= 3 or not _CONNECTOR.fullmatch(args[0]):
        raise CommandError(usage)
    minutes = _minutes(args[1], usage)
    id_tag = args[2] if len(args) == 3 else None
    if id_tag is not None and not _ID_TAG.fullmatch(id_tag):
        raise CommandError("a card idTag is 1 to 20 printable characters without spaces")
    return Reserve(int(args[0]), minutes, id_tag)


def _driver_reserve(args: list[str]) -> RequestReservation:
    usage = "usage: reserve <minutes> [connector], e.g. reserve 30 or reserve 30 2"
    if not 1 <= len(args) <= 2:
        raise CommandError(usage)
    minutes = _minutes(args[0], usage)
    if len(args) == 2 and not _CONNECTOR.fullmatch(args[1]):
        raise CommandError(usage)
    return RequestReservation(minutes, int(args[1]) if len(args) == 2 else None)


def _refund(args: list[str], operator: bool) -> Refund:
    if not args:
        return Refund()
    if not operator:
        raise CommandError("usage: refund (refunds your own session)")
    if len(args) != 1 or not _SESSION.fullmatch(args[0]):
        raise CommandError("usage: refund <session id>")
    return Refund(args[0])


def _no_args(command: Command, args: list[str], word: str) -> Command:
    if args:
        raise CommandError(f"{word} takes no arguments")
    return command


_SIMPLE: dict[str, Command] = {
    "stop": Stop(),
    "status": Status(),
    "help": Help(),
    "start": Start(),
    "cancel": Cancel(),
}
_OPERATOR_ONLY = frozenset(
    {"sessions", "enable", "disable", "price", "unlock", "reset", "limit", "firmware"}
)


def _operator_command(word: str, args: list[str]) -> Command:
    if word == "sessions":
        return _no_args(Sessions(), args, word)
    if word == "enable":
        return Enable(_connector(args, word))
    if word == "disable":
        return Disable(_connector(args, word))
    if word == "unlock":
        return Unlock(_connector(args, word))
    if word == "reset":
        return _reset(args)
    if word == "limit":
        return _limit(args)
    if word == "firmware":
        return _firmware(args)
    return _price(args)


def parse_command(text: str, *, operator: bool = False) -> Command:
    """Parse one DM into a command.

    Args:
        text: the DM's plaintext.
        operator: whether the sender is a configured operator.

    Returns:
        The command.

    Raises:
        UnknownCommand: the first word is not a command (reason lists what is).
        CommandNotAllowed: an operator command from someone else.
        CommandError: right command, wrong arguments (reason shows the usage).
    """
    if len(text) > _MAX_FIRMWARE_COMMAND_LENGTH:
        raise CommandError("message too long for a command; send help for the list")
    words = text.strip().split()
    if not words:
        raise UnknownCommand("empty message; send help for the list of commands")
    word, args = words[0].lower().lstrip("/!"), words[1:]
    if len(text) > MAX_COMMAND_LENGTH and not (word == "firmware" and operator):
        raise CommandError("message too long for a command; send help for the list")
    if word in _SIMPLE:
        return _no_args(_SIMPLE[word], args, word)
    if word == "refund":
        return _refund(args, operator)
    if word == "reserve":
        return _operator_reserve(args) if operator else _driver_reserve(args)
    if word in _OPERATOR_ONLY:
        if not operator:
            raise CommandNotAllowed(f"sorry, {word} is for the operator of this charger")
        return _operator_command(word, args)
    known = (
        "status, sessions, enable, disable, price, unlock, reset, limit, firmware, reserve, "
        "refund, stop, start, cancel, help"
    )
    if not operator:
        known = "stop, status, refund, reserve, start, cancel, help"
    raise UnknownCommand(f"unknown command {word[:20]!r}; commands: {known}")
