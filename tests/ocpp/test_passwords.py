"""Generated charger keys, their keyed hashes, and the back-off of wrong passwords (no sockets)."""

from __future__ import annotations

import math
import string
import time

import pytest

from ocpp_server.backoff import SourceBackoff, source_of
from ocpp_server.passwords import (
    KeyedHash,
    PasswordKey,
    ScryptHash,
    authorization_key_hex,
    generate_authorization_key,
    hash_password,
    parse_password_hash,
    verify_password,
)
from ocpp_server.settings import ChargerAuth
from tests.ocpp.conftest import FakeClock

# --- generated keys ------------------------------------------------------------------------------


def test_generated_keys_carry_at_least_120_bits_and_fit_the_authorization_key_rules() -> None:
    alphabet = set(string.ascii_letters + string.digits + "-_")
    keys = {generate_authorization_key() for _ in range(2000)}
    assert len(keys) == 2000
    used = set().union(*keys)
    # 64 symbols at 6 bits each: every symbol turns up in 2,000 keys of 20.
    assert used == alphabet
    for key in keys:
        assert len(key) * math.log2(len(alphabet)) >= 120
        assert 16 <= len(key.encode()) <= 20  # the hex form is at most 40 digits
        assert len(authorization_key_hex(key)) <= 40
    assert authorization_key_hex("AB") == "4142"


# --- keyed hashes --------------------------------------------------------------------------------


def test_a_keyed_hash_matches_its_key_only_under_the_server_key_it_was_made_with() -> None:
    server = PasswordKey(b"k" * 32)
    made = server.new_password()
    stored = parse_password_hash(made.password_hash)
    assert isinstance(stored, KeyedHash)
    assert made.password_hash.startswith(f"hmac-sha256${server.key_id}$")
    assert made.key not in repr(made)
    assert made.key_hex == made.key.encode().hex()
    assert server.matches(stored, made.key)
    assert server.matches(stored, made.key.encode())
    assert not server.matches(stored, made.key[:-1] + ("A" if made.key[-1] != "A" else "B"))
    assert verify_password(made.key, made.password_hash, key=server)

    other = PasswordKey(b"o" * 32)
    assert other.key_id != server.key_id
    assert not other.made_this(stored)
    assert not other.matches(stored, made.key)
    with pytest.raises(ValueError, match="password key"):
        verify_password(made.key, made.password_hash)


def test_a_keyed_check_takes_microseconds_where_scrypt_takes_milliseconds() -> None:
    server = PasswordKey(b"k" * 32)
    made = server.new_password()
    stored = parse_password_hash(made.password_hash)
    assert isinstance(stored, KeyedHash)
    started = time.perf_counter()
    for _ in range(1000):
        server.matches(stored, made.key)
    keyed = (time.perf_counter() - started) / 1000
    slow = parse_password_hash(hash_password(made.key, log2_n=12))
    assert isinstance(slow, ScryptHash)
    started = time.perf_counter()
    slow.matches(made.key)
    scrypt = time.perf_counter() - started
    assert keyed < 1e-3
    assert keyed * 50 < scrypt


@pytest.mark.parametrize(
    "stored",
    [
        "hmac-sha256$",
        "hmac-sha256$AAAAAAAA",
        "hmac-sha256$AAAA$" + "A" * 44,  # key id of 3 bytes
        "hmac-sha256$AAAAAAAA$AAAA",  # digest too short
        "hmac-sha256$AAAAAAAA$!!",
        "hmac-sha256$AAAAAAAA$" + "A" * 44 + "$x",
    ],
)
def test_malformed_keyed_hashes_are_configuration_errors(stored: str) -> None:
    with pytest.raises(ValueError, match="hmac-sha256"):
        parse_password_hash(stored)
    with pytest.raises(ValueError, match="hmac-sha256"):
        ChargerAuth("cp", stored)


def test_hashes_made_before_keyed_hashes_keep_working() -> None:
    stored = hash_password("a-password-a-person-chose", log2_n=10)
    assert isinstance(ChargerAuth("cp", stored).parsed_hash, ScryptHash)
    assert verify_password("a-password-a-person-chose", stored, key=PasswordKey(b"k" * 32))


def test_a_password_key_is_long_and_never_printed() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PasswordKey(b"short")
    key = PasswordKey(b"secret-secret-secret-secret-1234")
    assert "secret" not in repr(key)


# --- back-off ----------------------------------------------------------------------------------


def test_a_source_is_backed_off_after_its_free_failures_with_a_doubling_delay() -> None:
    clock = FakeClock()
    backoff = SourceBackoff(free_failures=3, base_delay_s=1, max_delay_s=8, clock=clock)
    for n in (1, 2):
        assert backoff.record_failure("10.0.0.1") == n
        assert backoff.reserve("10.0.0.1").granted
        backoff.release("10.0.0.1", failed=False)
    delays = []
    for _ in range(6):
        backoff.record_failure("10.0.0.1")
        delays.append(backoff.retry_after("10.0.0.1"))
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 8, 8]
    clock.now -= 0.5  # half a second before the last back-off ends
    assert backoff.reserve("10.0.0.1").retry_after == pytest.approx(0.5)
    assert backoff.reserve("10.0.0.2").granted  # another source is not affected


def test_a_source_has_at_most_a_few_slow_checks_running_at_once() -> None:
    backoff = SourceBackoff(max_in_flight=2, clock=FakeClock())
    assert backoff.reserve("10.0.0.1").granted
    assert backoff.reserve("10.0.0.1").granted
    busy = backoff.reserve("10.0.0.1")  # wait for one to end: nothing reserved
    assert not busy.granted
    assert not busy.backed_off
    backoff.release("10.0.0.1", failed=False)
    assert backoff.reserve("10.0.0.1").granted


def test_a_burst_of_wrong_passwords_costs_only_a_few_slow_checks() -> None:
    clock = FakeClock()
    backoff = SourceBackoff(free_failures=5, max_in_flight=2, clock=clock)
    waiting, hashed = 1000, 0  # all arrive before any check ends, as in a flood
    while waiting:
        answers = [backoff.reserve("10.0.0.1") for _ in range(waiting)]
        granted = sum(answer.granted for answer in answers)
        hashed += granted
        waiting -= granted + sum(answer.backed_off for answer in answers)
        for _ in range(granted):
            backoff.release("10.0.0.1", failed=True)  # then the waiting ones ask again
    assert hashed <= backoff.free_failures + backoff.max_in_flight - 1


def test_memory_is_bounded_and_quiet_or_successful_sources_are_forgotten() -> None:
    clock = FakeClock()
    backoff = SourceBackoff(max_sources=100, forget_after_s=60, clock=clock)
    for n in range(100_000):
        backoff.record_failure(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert len(backoff) == 100
    assert backoff.retry_after("10.0.0.1") == 0  # the least recently seen are forgotten
    # A source that only succeeds leaves nothing behind; one that keeps failing is kept.
    for _ in range(10):
        backoff.record_failure("172.16.0.9")
    for n in range(1000):
        assert backoff.reserve(f"192.168.{n >> 8}.{n & 255}").granted
        backoff.release(f"192.168.{n >> 8}.{n & 255}", failed=False)
        if n % 50 == 0:
            backoff.record_failure("172.16.0.9")
    assert len(backoff) <= 100
    assert backoff.retry_after("172.16.0.9") > 0
    # A backed-off source that stays quiet starts clean.
    for _ in range(10):
        backoff.record_failure("172.16.0.1")
    clock.advance(400)
    assert backoff.retry_after("172.16.0.1") == 0
    assert backoff.record_failure("172.16.0.1") == 1


def test_ipv6_sources_count_per_64_network() -> None:
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::2")
    assert source_of("2001:db8:1:2::1") != source_of("2001:db8:1:3::1")
    assert source_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_of("192.0.2.7") == "192.0.2.7"
    assert source_of("unix-socket") == "unix-socket"
