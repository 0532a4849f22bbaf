"""The strom command as a person uses it: init, run, stop, and readable errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strom.cli import build_parser, main
from tests.ports import unused_port

STROM = [sys.executable, "-m", "strom.cli"]


def init(tmp_path: Path) -> Path:
    assert main(["init", str(tmp_path)]) == 0
    return tmp_path / "strom.toml"


def start(config: Path) -> subprocess.Popen[str]:
    """``strom run`` on port 0 for HTTP and OCPP: it binds free ports and logs them."""
    env = {**os.environ, "STROM_SERVER__PORT": "0", "STROM_OCPP__PORT": "0"}
    return subprocess.Popen(
        [*STROM, "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


SERVING = re.compile(r"serving HTTP on [^ ]+:(\d+) \(public URL ([^)]+)\), OCPP on [^ ]+:(\d+);")


def wait_until_serving(proc: subprocess.Popen[str]) -> tuple[int, str, int, list[str]]:
    """Read the log until Strom says where it serves: (HTTP port, public URL, OCPP port)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if found := SERVING.search(line):
            return int(found[1]), found[2], int(found[3]), seen
    raise AssertionError("strom run ended before serving:\n" + "".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_init_then_run_starts_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    config = init(tmp_path)
    proc = start(config)
    try:
        http_port, public_url, ocpp_port, seen = wait_until_serving(proc)
        assert http_port != 0
        assert ocpp_port not in (0, http_port)
        assert public_url == f"http://127.0.0.1:{http_port}"  # the links name the bound port
        assert httpx.get(f"{public_url}/healthz", timeout=5).json()["status"] == "ok"
        with socket.create_connection(("127.0.0.1", ocpp_port), timeout=5):
            pass
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    out = "".join(seen) + out
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert "shutting down" in out
    assert (tmp_path / "data" / "strom.sqlite3").exists()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(tmp_path)
    assert main(["init", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


BROKEN = {
    "bad TOML": (
        "strom.toml",
        "[server\nport = 1\n",
        "strom.toml: not valid TOML",
    ),
    "wrong type": (
        "strom.toml",
        '[server]\nport = "eighty"\n',
        "key 'server.port': Input should be a valid integer",
    ),
    "bad tariff in a profile": (
        "profiles/example-1.toml",
        None,  # the example profile with a price finer than one msat
        "example-1.toml: key 'tariff.per_kwh_sat'",
    ),
    "unknown key": (
        "strom.toml",
        "[server]\nprot = 8080\n",
        "unknown key 'server.prot'",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_config_file_gives_one_readable_line_and_status_2(
    tmp_path: Path, case: str
) -> None:
    config = init(tmp_path)
    name, text, expected = BROKEN[case]
    target = tmp_path / name
    if text is None:
        text = target.read_text().replace("per_kwh_sat = 250", "per_kwh_sat = 0.0001")
    target.write_text(text)
    result = subprocess.run(
        [*STROM, "db", "upgrade", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("strom: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_environment_override_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = init(tmp_path)
    monkeypatch.setenv("STROM_STORAGE__DATABASE_URL", "mysql://nope")
    assert main(["db", "upgrade", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "storage.database_url" in err
    assert "postgresql+asyncpg" in err


def test_an_unreachable_database_is_a_clear_error_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = init(tmp_path)
    url = f"postgresql+asyncpg://strom:secret@127.0.0.1:{unused_port()}/strom"
    monkeypatch.setenv("STROM_STORAGE__DATABASE_URL", url)
    assert main(["db", "upgrade", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "cannot open the database" in err
    assert "secret" not in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-c", str(tmp_path / "nope.toml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("init", "run", "db"):
        assert command in out


def test_demo_and_simulate_take_the_ocpp_version() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).ocpp_version == "1.6"
    assert parser.parse_args(["demo", "--ocpp", "2.0.1"]).ocpp_version == "2.0.1"
    assert parser.parse_args(["simulate", "--ocpp", "2.0.1"]).ocpp_version == "2.0.1"
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--ocpp", "1.5"])


STORY = (
    "Strom demo — embedded defaults. The lightning backend is FAKE: no real money moves.",
    "charger page: http://127.0.0.1:",
    "LNURL-pay:    LNURL1",
    "1. The driver scans the sticker: LNURL1",
    "   payRequest: 1,000 to 100,000 sat accepted",
    "2. Pays 2,000 sat (prepaid budget); invoice lnbcrt",
    "3. Payment settled → ",
    "   session page: http://127.0.0.1:",
    "   charging: ",
    "4. The driver scans the stop-and-refund link (LNURL-withdraw)",
    "   stopped: ",
    "5. Refund paid: the wallet received ",
    "   paid 2,000 sat = consumed ",
    "   the ledger balances; nothing paid was lost",
)
DEMO = [str(Path(sys.executable).with_name("strom")), "demo", "--once", "--dir", "demo"]
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ +(DEBUG|INFO|WARNING|ERROR|CRITICAL)")


@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_the_demo_prints_the_story_and_nothing_else_and_logs_to_a_file(
    tmp_path: Path, ocpp: str
) -> None:
    """``strom demo --once`` as a person runs it, with a 1.6 or a 2.0.1 charger: the story on
    the terminal, the log in a file."""
    result = subprocess.run(
        [*DEMO, "--port", "0", "--ocpp-port", "0", "--speed", "240", "--ocpp", ocpp],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in STORY:
        assert any(line.startswith(step) for line in lines), f"missing: {step!r}\n{result.stdout}"
    assert "logs:         demo/strom.log" in lines
    start = "RequestStartTransaction" if ocpp == "2.0.1" else "RemoteStartTransaction"
    step = f"3. Payment settled → {start} → the charger started the session"
    assert step in lines, result.stdout
    assert not [line for line in lines if LOG_LINE.search(line)]
    assert result.stderr == ""
    log = (tmp_path / "demo" / "strom.log").read_text()
    assert "serving HTTP on" in log
    assert "HTTP Request:" not in log  # the demo driver's own requests are not service logs


def test_each_charger_has_a_nostr_key_and_the_nsec_needs_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init(tmp_path)
    key_file = tmp_path / "data" / "keys" / "example-1.key"
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o077 == 0
    capsys.readouterr()
    assert main(["keys", "show", "example-1", "-c", str(config)]) == 0
    shown = capsys.readouterr()
    assert shown.out.startswith("npub1")
    assert "nsec" not in shown.out
    assert main(["keys", "show", "example-1", "--nsec", "-c", str(config)]) == 0
    with_secret = capsys.readouterr()
    assert "nsec1" in with_secret.out
    assert "keep it secret" in with_secret.err
    assert main(["keys", "show", "nope", "-c", str(config)]) == 2


def test_api_tokens_are_created_once_listed_without_the_secret_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(init(tmp_path))
    capsys.readouterr()
    assert main(["token", "create", "ops", "-c", config]) == 0
    created = capsys.readouterr()
    token = created.out.strip()
    assert token.startswith("strom_")
    assert "shown once" in created.err
    assert main(["token", "create", "grafana", "--read-only", "-c", config]) == 0
    capsys.readouterr()

    assert main(["token", "create", "ops", "-c", config]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["token", "create", "bad name", "-c", config]) == 1
    assert "expected 1-64 letters" in capsys.readouterr().err

    assert main(["token", "list", "-c", config]) == 0
    listing = capsys.readouterr().out
    assert "grafana\tread\tlive" in listing
    assert "ops\tadmin\tlive" in listing
    assert token not in listing
    database = (tmp_path / "data").rglob("*.sqlite3")
    assert all(token.encode() not in path.read_bytes() for path in database)  # hashed only

    assert main(["token", "revoke", "ops", "-c", config]) == 0
    assert main(["token", "revoke", "ops", "-c", config]) == 1
    assert "no live token named 'ops'" in capsys.readouterr().err
    assert main(["token", "list", "-c", config]) == 0
    assert "ops\tadmin\trevoked" in capsys.readouterr().out


# --- charger passwords -------------------------------------------------------------------------


def _printed_password(out: str) -> tuple[str, str]:
    lines = out.splitlines()
    index = next(i for i, line in enumerate(lines) if "shown once" in line)
    key = lines[index + 2].strip()
    key_hex = lines[index + 3].rsplit(":", 1)[1].strip()
    return key, key_hex


async def _handshake(port: int, charger_id: str, password: str | None) -> int:
    from tests.ocpp.drivers import handshake_status

    return await handshake_status(f"ws://127.0.0.1:{port}/ocpp", charger_id, password)


def test_init_prints_the_chargers_password_once_and_strom_admits_only_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    config = init(tmp_path)
    key, key_hex = _printed_password(capsys.readouterr().out)
    assert len(key) == 20
    assert key_hex == key.encode().hex()
    profile = (tmp_path / "profiles" / "example-1.toml").read_text()
    assert 'password_hash = "hmac-sha256$' in profile
    assert "# The hash of the charger's OCPP password" in profile  # comments kept
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path  # only the hash is stored
    assert (tmp_path / "data" / "keys" / "_server.key").stat().st_mode & 0o077 == 0

    proc = start(config)
    try:
        _, _, ocpp_port, _ = wait_until_serving(proc)
        assert asyncio.run(_handshake(ocpp_port, "example-1", key)) == 101
        assert asyncio.run(_handshake(ocpp_port, "example-1", None)) == 401
        assert asyncio.run(_handshake(ocpp_port, "example-1", key[::-1])) == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_charger_password_writes_a_new_hash_into_the_profile_and_prints_the_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init(tmp_path)
    capsys.readouterr()
    profile = tmp_path / "profiles" / "example-1.toml"
    profile.write_text(profile.read_text().replace("[ocpp]", "[ocpp]\n# the garage charger"))
    profile.chmod(0o640)
    before = profile.read_text()
    assert main(["charger", "password", "example-1", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    key, key_hex = _printed_password(out)
    assert key_hex == key.encode().hex()
    assert str(profile) in out
    after = profile.read_text()
    assert "# the garage charger" in after
    old_hash = next(line for line in before.splitlines() if line.startswith("password_hash"))
    new_hash = next(line for line in after.splitlines() if line.startswith("password_hash"))
    assert new_hash != old_hash
    assert new_hash.startswith('password_hash = "hmac-sha256$')
    # Nothing but that line changed.
    assert [a for a in after.splitlines() if a not in before.splitlines()] == [new_hash]
    assert not list(profile.parent.glob(".*.tmp"))  # written atomically, no leftovers
    assert profile.stat().st_mode & 0o777 == 0o640  # the operator's permissions are kept

    assert main(["charger", "password", "nope", "-c", str(config)]) == 2
    assert "no charger 'nope'" in capsys.readouterr().err


def test_a_chosen_password_is_read_from_stdin_and_stored_with_scrypt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from ocpp_server import verify_password

    config = init(tmp_path)
    profile = tmp_path / "profiles" / "example-1.toml"
    before = profile.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("too-short\n"))
    assert main(["charger", "password", "example-1", "--set", "-c", str(config)]) == 2
    assert "16 to 40" in capsys.readouterr().err
    assert profile.read_text() == before  # nothing changed

    monkeypatch.setattr(sys, "stdin", io.StringIO("my own charger password\n"))
    assert main(["charger", "password", "example-1", "--set", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "my own charger password" not in out
    assert b"my own charger password".hex() in out
    stored = profile.read_text().split('password_hash = "', 1)[1].split('"', 1)[0]
    assert stored.startswith("scrypt$")
    assert verify_password("my own charger password", stored)


def _run_briefly(config: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Start `strom run`; return its status if it exited at once, or None and its log."""
    port = unused_port()
    proc = subprocess.Popen(
        [*STROM, "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "STROM_SERVER__PORT": str(port), **env},
    )
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        status = proc.poll()
        if status is None:
            proc.terminate()
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return status, out


def test_strom_refuses_to_start_with_a_charger_anyone_could_impersonate(tmp_path: Path) -> None:
    config = init(tmp_path)
    profile = tmp_path / "profiles" / "example-1.toml"
    text = profile.read_text()
    start = text.index('password_hash = "')
    end = text.index('"', start + len('password_hash = "'))
    profile.write_text(text[:start] + 'password_hash = ""' + text[end + 1 :])
    ocpp = {"STROM_OCPP__PORT": str(unused_port())}

    status, out = _run_briefly(config, ocpp)  # OCPP on 0.0.0.0, the default
    assert status == 2, out
    [line] = [line for line in out.splitlines() if line.startswith("strom: error: ")]
    assert "example-1" in line
    assert "strom charger password example-1" in line
    assert "allow_unauthenticated = true" in line

    # Loopback only: nobody else can reach it.
    status, out = _run_briefly(config, {**ocpp, "STROM_OCPP__HOST": '"127.0.0.1"'})
    assert status is None, out

    # The operator accepts the risk for this charger: it starts, and says so every time.
    profile.write_text(
        profile.read_text().replace("[ocpp]", "[ocpp]\nallow_unauthenticated = true")
    )
    status, out = _run_briefly(config, ocpp)
    assert status is None, out
    [warning] = [line for line in out.splitlines() if "without a password" in line]
    assert "WARNING" in warning
    assert "charger example-1" in warning


def test_the_dynamic_demo_prints_the_bill_interval_by_interval(tmp_path: Path) -> None:
    """``strom demo --once --dynamic``: a recorded day of prices, the charge spans several of
    them, and the story ends with each interval's energy x price = cost and their sum."""
    result = subprocess.run(
        [*DEMO, "--port", "0", "--ocpp-port", "0", "--speed", "240", "--dynamic"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in STORY:
        assert any(line.startswith(step) for line in lines), f"missing: {step!r}\n{result.stdout}"
    header = "   billed per interval (prices from recorded:demo-day, fixed at payment):"
    assert header in lines, result.stdout
    rows = [line for line in lines[lines.index(header) + 1 :] if " kWh x " in line]
    assert len(rows) >= 2, result.stdout  # the charge spans several prices
    assert len({row.split(" x ")[1].split(" = ")[0] for row in rows}) >= 2  # different prices
    assert lines[-1].startswith("   energy cost = the sum of the intervals: ")
    assert "time_of_use" in (tmp_path / "demo" / "profiles" / "demo-1.toml").read_text()
