"""The strom command as a person uses it: init, run, stop, and readable errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from strom.cli import main
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


STORY = (
    "Strom demo — embedded defaults. The lightning backend is FAKE: no real money moves.",
    "charger page: http://127.0.0.1:",
    "LNURL-pay:    LNURL1",
    "1. The driver scans the sticker: LNURL1",
    "   payRequest: 1,000 to 100,000 sat accepted",
    "2. Pays 2,000 sat (prepaid budget); invoice lnbcrt",
    "3. Payment settled → RemoteStartTransaction → the charger started the session",
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


def test_the_demo_prints_the_story_and_nothing_else_and_logs_to_a_file(tmp_path: Path) -> None:
    """``strom demo --once`` as a person runs it: the story on the terminal, the log in a file."""
    result = subprocess.run(
        [*DEMO, "--port", "0", "--ocpp-port", "0", "--speed", "240"],
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
