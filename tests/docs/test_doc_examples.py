"""Every shell example in README.md and docs/*.md runs against a live Strom and does what the
doc says, so an example that stops working fails the suite.

Each fenced ``sh``/``bash``/``shell``/``console`` block is one test (its id is ``doc:line``),
run command by command in a bash session (tests/docs/shell.py) in a folder like a clone's,
against the Strom that README's install block started (tests/docs/live.py). ``curl`` runs
with ``--fail-with-body``, so an HTTP error fails the example; every command must exit 0.
Placeholders stand for this installation: ``https://charge.example.org`` → its URL,
``/srv/strom`` → its folder, ``strom_…``/``$TOKEN`` → an admin token it made, ``cp-1`` → its
charger, a session id → its running session, ``$NSEC`` → an admin npub's key, ``nak`` → a
stand-in signing with Strom's nostr code (tests/docs/nak.py). Where the doc says what a
command prints or does, :data:`CHECKS` checks it. A block that cannot run here carries an
``<!-- example: skip (reason) -->`` marker (tests/docs/examples.py); it is listed with its
reason in the terminal summary (not reported as a pytest skip: CI shows 0 skipped), and any
other block runs, so a new example is tested by default.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from strom.cli import build_parser, main
from tests.conftest import peer_missing
from tests.docs.examples import ROOT, Block, all_docs, console_steps
from tests.docs.live import CHARGER, Live, install, lnd_installation, lnd_stub, wait_for
from tests.docs.shell import Result
from tests.lightning.tls import make_self_signed

DOCS = all_docs()
SHELL_BLOCKS = [block for doc in DOCS for block in doc.blocks if block.is_shell]
INLINE = [item for doc in DOCS for item in doc.inline]
INSTALL = "strom init /srv/strom"  # README's install block, run by the `live` fixture
FAKE_PAY = "strom fake pay <invoice> -c"  # README's, run by the `live` fixture to pay
PLACEHOLDER = re.compile(r"…|<[a-z][a-z _-]*>")
TOOLS = ("bash", "curl", "base64", "sha256sum", "openssl")  # what the examples call

pytestmark = pytest.mark.slow  # one live Strom for the module: about 25 s in all


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if missing := [tool for tool in TOOLS if shutil.which(tool) is None]:
        peer_missing(f"the doc examples call {', '.join(missing)}, which is not installed")
    [block] = [b for b in SHELL_BLOCKS if INSTALL in b.text]
    [pay] = {span for _, span in INLINE if span.startswith(FAKE_PAY)}
    [ocpp_url] = re.findall(r"`(ws://<host>:\d+/ocpp/)`", (ROOT / "README.md").read_text())
    running = install(tmp_path_factory.mktemp("docs"), block, ocpp_url=ocpp_url, pay=pay)
    try:
        yield running
    finally:
        running.close()


# --- what each example is said to do --------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """Where an example runs and what it answers; ``srv`` stands for /srv/strom."""

    cwd: Path
    srv: Path | None = None
    stdin: str = "/dev/null"


@dataclass(frozen=True)
class Check:
    """What the doc says a block does; ``fragment`` finds the block (exactly one)."""

    fragment: str
    check: Callable[[Live, list[Result], Path], None]
    scene: Callable[[Live, Path], Iterator[Scene]] | None = None


def _json(result: Result) -> Any:
    return orjson.loads(result.out)


def _one(results: list[Result], fragment: str) -> Result:
    [found] = [r for r in results if fragment in r.command]
    return found


def check_install(live: Live, results: list[Result], cwd: Path) -> None:
    """README: init prints the charger's password once and keeps its hash; run serves on the
    URL it logs; token create prints a token the API takes as an admin's."""
    init = _one(live.install, "strom init")
    assert "OCPP password (AuthorizationKey), shown once" in init.out
    profile = (live.srv / "profiles" / f"{CHARGER}.toml").read_text()
    assert live.password not in profile
    assert 'password_hash = "hmac-sha256$' in profile
    assert live.public_url.startswith("http://127.0.0.1:")
    me = live.get("/me")
    assert (me["actor"], me["scope"]) == ("token:ops", "admin")
    assert "shown once" in _one(live.install, "token create").err


def fresh_folder(live: Live, tmp_path: Path) -> Iterator[Scene]:
    """A folder holding a strom.toml (the bare ``strom token`` commands use ./strom.toml)."""
    assert main(["init", str(tmp_path / "strom")]) == 0
    yield Scene(cwd=tmp_path / "strom")


def check_tokens(live: Live, results: list[Result], cwd: Path) -> None:
    ops, grafana, listing, revoke = results
    assert ops.out.startswith("strom_")
    assert "(admin) created; it is shown once" in ops.err
    assert grafana.out.startswith("strom_")
    assert "(read) created" in grafana.err
    lines = listing.out.splitlines()
    assert sorted(line.split("\t")[:3] for line in lines) == [
        ["grafana", "read", "live"],
        ["ops", "admin", "live"],
    ]
    assert "strom_" not in listing.out  # never the tokens
    assert revoke.out.strip() == "token 'grafana' revoked"


def _charger_ids(answer: Any) -> list[str]:
    return [charger["charger_id"] for charger in answer["items"]]


def check_bearer(live: Live, results: list[Result], cwd: Path) -> None:
    assert _charger_ids(_json(results[-1])) == [CHARGER]


def check_nip98(live: Live, results: list[Result], cwd: Path) -> None:
    """The GET lists the chargers; the PUT changes the price, and GET shows the new one."""
    listed = [r for r in results if r.command.startswith("curl -H")]
    assert _charger_ids(_json(listed[0])) == [CHARGER]
    put = _json(_one(results, "curl -X PUT"))
    assert (put["per_kwh_sat"], put["saved"]) == ("300", True)
    assert live.get(f"/chargers/{CHARGER}/tariff")["per_kwh_sat"] == "300"
    assert "per_kwh_sat = 300" in (live.srv / "profiles" / f"{CHARGER}.toml").read_text()


def check_api_examples(live: Live, results: list[Result], cwd: Path) -> None:
    charging = _json(_one(results, "state=charging"))
    assert [s["session_id"] for s in charging["items"]] == [live.session_id]
    csv = (cwd / "sessions.csv").read_text().splitlines()
    assert csv[0].startswith("session_id,")
    since = re.findall(r"since=([^&]+)&format=csv", _one(results, "format=csv").command)[0]
    created = live.get(f"/sessions/{live.session_id}")["created_at"]
    listed = datetime.fromisoformat(created) >= datetime.fromisoformat(since)
    assert [row.split(",")[0] for row in csv[1:]] == ([live.session_id] if listed else [])
    [month] = _json(_one(results, "ledger/totals"))["totals"]
    assert (month["sessions"], month["paid_msat"]) == (1, 2_000_000)
    stopped = _json(_one(results, "/stop"))
    assert stopped["session_id"] == live.session_id
    assert stopped["state"] != "charging"
    billed = wait_for(
        lambda: (s := live.get(f"/sessions/{live.session_id}"))["state"] != "stopping" and s,
        "the stopped session is billed",
    )
    assert billed["paid_msat"] == billed["consumed_msat"] + billed["refundable_msat"], billed
    assert billed["refundable_msat"] > 0  # the payer's to claim with their link
    connector = live.get(f"/chargers/{CHARGER}")["connectors"][0]
    assert connector["enabled"] is False
    preview = _json(_one(results, "tariff/preview"))
    assert (preview["per_kwh_sat"], preview["session_fee_sat"], preview["saved"]) == (
        "300",
        "10",
        False,
    )
    assert live.get(f"/chargers/{CHARGER}/tariff")["session_fee_sat"] == "0"  # changed nothing
    svg = (cwd / "sticker.svg").read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg"))
    assert "</svg>" in svg


def check_crash_list(live: Live, results: list[Result], cwd: Path) -> None:
    """``--list`` names every kill point of the doc's table, with passes like ``:7``."""
    listed = results[0].out.split()
    doc = (ROOT / "docs" / "crash-safety.md").read_text()
    for name in re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", doc, flags=re.MULTILINE):
        assert f"{name}:1" in listed, name
    assert "db.after_commit:7" in listed


def renewed_lnd(live: Live, tmp_path: Path) -> Iterator[Scene]:
    """An installation on LND that renewed its certificate; a terminal that answers "y"."""
    old = make_self_signed(tmp_path / "tls", "lnd")
    new = make_self_signed(tmp_path / "tls", "lnd-renewed")
    with lnd_stub(presents=new) as stub:
        folder = lnd_installation(tmp_path / "srv-strom", stub, pinned=old)
        master, terminal = os.openpty()
        try:
            os.write(master, b"y\n")
            yield Scene(cwd=live.home, srv=folder, stdin=os.ttyname(terminal))
        finally:
            os.close(terminal)
            os.close(master)


def check_pin_cert(live: Live, results: list[Result], cwd: Path) -> None:
    """It shows the fingerprint as ``openssl x509 -fingerprint -sha256`` does (the doc says to
    compare it on the node), names the node, asks, and writes the new pin keeping a .bak."""
    [pin] = results
    folder = Path(re.findall(r"-c (\S+)/strom.toml", pin.command)[0])
    cert = folder / "tls.cert"
    openssl = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert openssl.stdout.strip().split("=", 1)[1] in pin.out
    assert "the node accepts Strom's macaroon over it" in pin.out
    assert "[y/N]" in pin.out  # it asked
    assert f"pinned: wrote {cert}" in pin.out
    assert (folder / "tls.cert.bak").read_text() != cert.read_text()


CHECKS = [
    Check(INSTALL, check_install),
    Check("strom token create grafana --read-only", check_tokens, fresh_folder),
    Check("TOKEN=strom_…", check_bearer),
    Check("nak event", check_nip98),
    Check('"$API/sessions?state=charging"', check_api_examples),
    Check("tests.crash.harness --list", check_crash_list),
    Check("strom lightning pin-cert", check_pin_cert, renewed_lnd),
]


def check_for(block: Block) -> Check | None:
    found = [check for check in CHECKS if check.fragment in block.text]
    assert len(found) <= 1, f"{block.id}: several checks match: {found}"
    return found[0] if found else None


@contextlib.contextmanager
def scene_for(check: Check | None, live: Live, tmp_path: Path) -> Iterator[Scene]:
    if check is None or check.scene is None:
        yield Scene(cwd=live.home)
        return
    yield from check.scene(live, tmp_path)


# --- the tests ------------------------------------------------------------------------------


RUN_BLOCKS = [block for block in SHELL_BLOCKS if block.skip is None]
MARKED_BLOCKS = [block for block in SHELL_BLOCKS if block.skip is not None]


def test_the_examples_not_run_here_are_marked_with_their_reason() -> None:
    """Blocks marked in the doc are not run (they are listed, not skipped: CI shows 0 skips)."""
    assert all(block.skip for block in MARKED_BLOCKS)
    assert len(MARKED_BLOCKS) <= 3, [block.id for block in MARKED_BLOCKS]  # keep them few


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[block.id for block in RUN_BLOCKS])
def test_the_example_runs_and_does_what_the_doc_says(
    block: Block, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live")
    check = check_for(block)
    if INSTALL in block.text:  # the fixture ran it, command by command
        check_install(live, live.install, live.home)
        return
    with scene_for(check, live, tmp_path) as scene:
        shell = live.shell(scene.cwd)
        results = []
        for command in block.commands():
            command = live.substitute(command, scene.srv)
            left = PLACEHOLDER.findall(command)
            assert not left, f"{block.id}: no value stands for {left} in {command!r}"
            result = shell.run(command, stdin=scene.stdin)
            assert result.status == 0, f"{block.id} failed:\n{result.describe()}"
            results.append(result)
        if block.lang == "console":
            _check_console(block, live, results)
        if check is not None:
            check.check(live, results, scene.cwd)


def _check_console(block: Block, live: Live, results: list[Result]) -> None:
    """A transcript's printed lines (those without a placeholder) appear in the output."""
    for (_, shown), result in zip(console_steps(block.text), results, strict=True):
        for line in shown:
            line = live.substitute(line).strip()
            if line and not PLACEHOLDER.search(line):
                assert line in result.out + result.err, f"{block.id}: {line!r} not printed"


def test_every_check_finds_its_block() -> None:
    """A check whose block changed or vanished fails instead of silently checking nothing."""
    for check in CHECKS:
        found = [block.id for block in SHELL_BLOCKS if check.fragment in block.text]
        assert len(found) == 1, f"{check.fragment!r} matches {found or 'no shell block'}"
        assert not [b for b in SHELL_BLOCKS if b.id == found[0] and b.skip], found


def test_skip_markers_sit_right_above_a_shell_block_and_give_a_reason() -> None:
    stray = [marker for doc in DOCS for marker in doc.stray_markers]
    assert stray == []


def _parse_error(args: list[str]) -> str | None:
    """What the CLI's parser says against ``args``, if it refuses them (missing arguments are
    fine: the prose names a command)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            if exc.code != 0 and "arguments are required" not in err.getvalue():
                return err.getvalue().strip().splitlines()[-1]
    return None


def help_lists() -> list[str]:
    """The commands README says ``strom --help`` lists (``keys show <charger>``…)."""
    readme = (ROOT / "README.md").read_text()
    listed = readme[readme.index("`strom --help` lists the commands:") :].split("\n\n")[0]
    spans = [" ".join(span.split()) for span in re.findall(r"`([a-z][^`]*)`", listed)]
    return [span for span in spans if not span.startswith("strom")]


def test_every_strom_command_named_in_the_prose_exists() -> None:
    """``strom …`` in the text, and the commands README says ``strom --help`` lists, name
    commands and options the CLI has."""
    spans = INLINE + [("README.md", f"strom {name}") for name in help_lists()]
    wrong = []
    for where, span in spans:
        args = re.sub(r"<[^>]*>|…", "example-1", span).replace("[", "").replace("]", "")
        if error := _parse_error(args.removeprefix(".venv/bin/").split()[1:]):
            wrong.append(f"{where}: `{span}`: {error}")
    assert wrong == []
    assert len(spans) > 30


# The prose's `strom …` commands run (in the folder of the live Strom's strom.toml) unless
# they are named here, exactly, with the reason; a new one runs by default.
_DEMO = "serves until Ctrl-C; tests/cli/test_cli.py runs strom demo --once (both OCPP versions)"
_PAID = "the live Strom's driver pays with README's strom fake pay <invoice> -c …"
_LND = "needs LND; docs/lightning.md's example runs it against the LND stub"
NAMED_ONLY = {
    "strom demo": _DEMO,
    "strom run": "README's install block runs it: the live Strom",
    "strom run --cluster": "needs PostgreSQL and serves until stopped; tests/cluster runs three",
    "strom simulate": "runs until stopped; the live Strom's charger is strom simulate",
    "strom demo --ocpp 2.0.1": _DEMO,
    "strom demo --dynamic": _DEMO,
    "strom simulate --ocpp 2.0.1 --url ws://127.0.0.1:9000/ocpp --id <charger id>": (
        "runs until stopped; tests/e2e runs the same simulated 2.0.1 charger against Strom"
    ),
    "strom fake pay <invoice> -c demo-data/strom.toml": _PAID,
    "strom fake pay <bolt11>": _PAID,
    "strom lightning pin-cert": _LND,
    "strom lightning pin-cert -c …": _LND,
    "strom charger password": "the bare name of the command; its uses with <id> run",
}
INLINE_VALUES = {
    "<charger id>": CHARGER,
    "<charger>": CHARGER,
    "<id>": CHARGER,
    "NAME": "prose",  # a token the test creates for `strom token revoke NAME`
}
PRINTS = {  # what the prose says they print
    "strom init": "OCPP password (AuthorizationKey), shown once",
    "strom keys show <charger>": "npub1",
    "strom charger password <id>": "OCPP password (AuthorizationKey), shown once",
    "strom charger password <charger id> -c strom.toml": "hex, for ChangeConfiguration",
    "strom charger password <id> --set": "your password is set",
    "strom token revoke NAME": "token 'prose' revoked",
}


@pytest.mark.parametrize("span", sorted({span for _, span in INLINE} - set(NAMED_ONLY)))
def test_a_strom_command_in_the_prose_runs(
    span: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live: Live = request.getfixturevalue("live")
    text = span
    for placeholder, value in INLINE_VALUES.items():
        text = text.replace(placeholder, value)
    assert not PLACEHOLDER.search(text), f"no value stands for a placeholder in `{span}`"
    args = text.split()[1:]
    if args[:2] == ["token", "revoke"]:
        assert main(["token", "create", "prose", "-c", str(live.srv / "strom.toml")]) == 0
    monkeypatch.chdir(tmp_path if args[:1] == ["init"] else live.srv)  # init: a new folder
    monkeypatch.setattr("sys.stdin", io.StringIO("a-chosen-password-16\n"))  # for --set
    code: int | str | None
    try:
        code = main(args)
    except SystemExit as exc:  # --help
        code = exc.code
    out = capsys.readouterr().out
    assert code == 0, f"`{span}` exited {code}:\n{out}"
    assert PRINTS.get(span, "") in out
    if span == "strom --help":  # README: "`strom --help` lists the commands: `init`, …"
        commands = set(re.findall(r"^    ([a-z]+)\b", out, flags=re.MULTILINE))
        assert {name.split()[0] for name in help_lists()} <= commands, out


def test_every_named_only_command_is_in_the_prose() -> None:
    assert set(NAMED_ONLY) <= {span for _, span in INLINE}


def test_the_readmes_demo_transcript_is_the_story_the_demo_test_sees() -> None:
    """README's ``text`` transcript of ``./scripts/demo`` is not run here (it serves until
    Ctrl-C), but each line tests/cli/test_cli.py requires of ``strom demo`` output is in it."""
    from tests.cli.test_cli import STORY

    [transcript] = [b for b in DOCS[0].blocks if b.lang == "text" and "Strom demo" in b.text]
    shown = transcript.text.splitlines()
    assert [step for step in STORY if not any(line.startswith(step) for line in shown)] == []


def test_strom_run_stops_on_sigterm_within_15_s_as_the_readme_says(live: Live) -> None:
    """README: "Ctrl-C or SIGTERM stops it (within ~15 s)". Last: it ends the live Strom."""
    assert live.server is not None
    assert live.server.stop("TERM", within_s=15) == 0
    assert "shutting down" in live.server.log()
