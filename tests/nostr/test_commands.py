"""The DM command language of drivers and operators."""

from __future__ import annotations

import pytest

from strom_nostr.commands import (
    Cancel,
    CancelReserve,
    Disable,
    Enable,
    Firmware,
    Help,
    Refund,
    RequestReservation,
    Reserve,
    Reset,
    ResetKind,
    Sessions,
    SetLimit,
    SetPrice,
    Start,
    Status,
    Stop,
    Unlock,
    help_text,
    parse_command,
)
from strom_nostr.errors import CommandError, CommandNotAllowed, UnknownCommand


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("stop", Stop()),
        ("  STOP  ", Stop()),
        ("/stop", Stop()),
        ("!status", Status()),
        ("Status", Status()),
        ("help", Help()),
        ("refund", Refund()),
    ],
)
def test_driver_commands(text: str, command: object) -> None:
    assert parse_command(text) == command
    assert parse_command(text, operator=True) == command


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("sessions", Sessions()),
        ("enable 1", Enable(1)),
        ("disable 2", Disable(2)),
        ("unlock 12", Unlock(12)),
        ("reset soft", Reset(ResetKind.SOFT)),
        ("reset HARD", Reset(ResetKind.HARD)),
        ("price 250 sat/kWh", SetPrice(250_000)),
        ("price 250 sat/kwh", SetPrice(250_000)),
        ("price 0.5 sat/kWh", SetPrice(500)),
        ("price 250sat/kWh", SetPrice(250_000)),
        ("price 250 sat / kWh", SetPrice(250_000)),
        ("price 250000 msat/kWh", SetPrice(250_000)),
        ("price 0 sat/kWh", SetPrice(0)),
        ("refund 7f3a-b2", Refund("7f3a-b2")),
        ("status", Status()),
    ],
)
def test_operator_commands(text: str, command: object) -> None:
    assert parse_command(text, operator=True) == command


@pytest.mark.parametrize(
    "text", ["sessions", "enable 1", "disable 1", "unlock 1", "reset soft", "price 1 sat/kWh"]
)
def test_operator_commands_from_drivers_are_refused_politely(text: str) -> None:
    with pytest.raises(CommandNotAllowed, match="sorry"):
        parse_command(text)


def test_a_driver_cannot_name_someone_elses_session() -> None:
    with pytest.raises(CommandError, match="your own session"):
        parse_command("refund 7f3a")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("enable", "usage: enable"),
        ("enable one", "usage: enable"),
        ("enable 0", "usage: enable"),
        ("enable 100", "usage: enable"),
        ("unlock 1 2", "usage: unlock"),
        ("reset", "usage: reset"),
        ("reset now", "usage: reset"),
        ("price 250", "usage: price"),
        ("price 250 EUR/kWh", "usage: price"),
        ("price -1 sat/kWh", "usage: price"),
        ("price 0.0001 sat/kWh", "whole msat"),
        ("price 1.5 msat/kWh", "whole msat"),
        ("price 200000 sat/kWh", "typo"),
        ("refund a/b", "usage: refund"),
        ("sessions all", "no arguments"),
        ("stop now please", "no arguments"),
    ],
)
def test_bad_arguments_say_what_would_work(text: str, hint: str) -> None:
    with pytest.raises(CommandError, match=hint) as caught:
        parse_command(text, operator=True)
    assert not isinstance(caught.value, UnknownCommand | CommandNotAllowed)


@pytest.mark.parametrize("text", ["", "   ", "hello", "stahp", "price"[:0]])
def test_unknown_commands_list_the_known_ones(text: str) -> None:
    with pytest.raises(UnknownCommand) as caught:
        parse_command(text)
    assert "help" in caught.value.reason


def test_drivers_are_not_told_about_operator_commands() -> None:
    with pytest.raises(UnknownCommand) as caught:
        parse_command("hello")
    assert "unlock" not in caught.value.reason
    with pytest.raises(UnknownCommand) as caught:
        parse_command("hello", operator=True)
    assert "unlock" in caught.value.reason


def test_overlong_messages_are_not_parsed() -> None:
    with pytest.raises(CommandError, match="too long"):
        parse_command("stop" + " " * 300)


def test_help_texts() -> None:
    assert "stop" in help_text(operator=False)
    assert "unlock" not in help_text(operator=False)
    assert "unlock <connector>" in help_text(operator=True)


def test_limit_sets_or_removes_the_site_limit_for_operators_only() -> None:
    assert parse_command("limit 7.4", operator=True) == SetLimit(7_400)
    assert parse_command("limit 11 kW", operator=True) == SetLimit(11_000)
    assert parse_command("/limit 22kw", operator=True) == SetLimit(22_000)
    assert parse_command("limit off", operator=True) == SetLimit(None)
    assert parse_command("limit 0", operator=True) == SetLimit(None)
    for bad in ("limit", "limit 0.5", "limit 1001", "limit fast", "limit 7.4444", "limit 1 2"):
        with pytest.raises(CommandError):
            parse_command(bad, operator=True)
    with pytest.raises(CommandNotAllowed):
        parse_command("limit 7", operator=False)


def test_firmware_takes_a_download_url_or_nothing_for_operators_only() -> None:
    url = "https://Firmware.example/fw/1.3.0.bin?sig=" + "A" * 300
    assert parse_command(f"firmware {url}", operator=True) == Firmware(url)
    assert parse_command("/Firmware ftp://10.0.0.5/fw.bin", operator=True) == Firmware(
        "ftp://10.0.0.5/fw.bin"
    )
    assert parse_command("firmware", operator=True) == Firmware()
    for bad in ("firmware file:///etc/passwd", "firmware fw.bin", "firmware http://a b"):
        with pytest.raises(CommandError, match="usage: firmware"):
            parse_command(bad, operator=True)
    with pytest.raises(CommandError, match="too long"):
        parse_command("firmware https://x.example/" + "a" * 600, operator=True)
    with pytest.raises(CommandNotAllowed):
        parse_command("firmware", operator=False)
    with pytest.raises(CommandError, match="too long"):  # long texts from drivers stay refused
        parse_command(f"firmware {url}", operator=False)


def test_reserve_is_the_operators_form_for_operators_and_the_paid_one_for_drivers() -> None:
    assert parse_command("reserve 1 30", operator=True) == Reserve(1, 30)
    assert parse_command("reserve 2 90 Fleet-0042", operator=True) == Reserve(2, 90, "Fleet-0042")
    assert parse_command("reserve cancel 2", operator=True) == CancelReserve(2)
    assert parse_command("Reserve CANCEL 1", operator=True) == CancelReserve(1)
    assert parse_command("reserve 30") == RequestReservation(30)
    assert parse_command("/reserve 45 2") == RequestReservation(45, 2)
    assert parse_command("start") == Start()
    assert parse_command("cancel", operator=True) == Cancel()
    bad_operator = (
        "reserve",
        "reserve 1",
        "reserve 0 30",
        "reserve 1 0",
        "reserve 1 1441",
        "reserve 1 30 tag too-many",
        "reserve cancel",
        "reserve cancel x",
    )
    for text in bad_operator:
        with pytest.raises(CommandError, match="usage: reserve"):
            parse_command(text, operator=True)
    with pytest.raises(CommandError, match="idTag"):
        parse_command("reserve 1 30 " + "x" * 21, operator=True)
    for text in ("reserve", "reserve 0", "reserve 30 0", "reserve 30 2 3", "reserve soon"):
        with pytest.raises(CommandError, match="usage: reserve"):
            parse_command(text)
    with pytest.raises(CommandError, match="no arguments"):
        parse_command("start 1")


def test_drivers_learn_of_reserve_start_and_cancel() -> None:
    assert "reserve <minutes> [connector]" in help_text(operator=False)
    assert "start / cancel" in help_text(operator=False)
    assert "firmware <url>" in help_text(operator=True)
    assert "reserve <connector> <minutes>" in help_text(operator=True)
    assert "firmware" not in help_text(operator=False)
