"""How the examples are found: fences, skip markers, commands and inline ``strom`` spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import Doc, console_steps, read, split_commands


def doc(tmp_path: Path, text: str) -> Doc:
    (tmp_path / "docs").mkdir(exist_ok=True)
    path = tmp_path / "docs" / "x.md"
    path.write_text(text)
    return read(path, tmp_path)


def test_every_fenced_block_is_found_with_its_language_and_line(tmp_path: Path) -> None:
    found = doc(
        tmp_path,
        "# x\n\n```sh\nstrom init\n```\n\n- item\n\n  ```bash\n  strom run\n  ```\n\n"
        "```text\nout\n```\n\n````console\n$ strom --help\n````\n",
    )
    assert [(b.id, b.lang, b.is_shell) for b in found.blocks] == [
        ("docs/x.md:3", "sh", True),
        ("docs/x.md:9", "bash", True),
        ("docs/x.md:13", "text", False),
        ("docs/x.md:17", "console", True),
    ]
    assert found.blocks[1].text == "strom run"  # the list item's indentation is not the code's
    assert found.stray_markers == []


def test_a_block_runs_unless_the_line_above_it_says_skip_with_a_reason(tmp_path: Path) -> None:
    found = doc(
        tmp_path,
        "<!-- example: skip (needs a real LND node) -->\n```sh\nlncli getinfo\n```\n\n"
        "```sh\nstrom init\n```\n",
    )
    assert [b.skip for b in found.blocks] == ["needs a real LND node", None]
    assert found.stray_markers == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<!-- example: skip (x) -->\n\nsome prose\n\n```sh\ntrue\n```\n", "no block below"),
        ("<!-- example: skip (x) -->\n", "no block below"),
        ("<!-- example: skip () -->\n```sh\ntrue\n```\n", "expected"),
        ("<!-- example: skip -->\n```sh\ntrue\n```\n", "expected"),
        ("<!-- example: run later -->\n```sh\ntrue\n```\n", "expected"),
        ("<!-- example: skip (x) -->\n```toml\na = 1\n```\n", "not shell"),
    ],
)
def test_a_marker_that_skips_nothing_or_gives_no_reason_is_an_error(
    tmp_path: Path, text: str, why: str
) -> None:
    found = doc(tmp_path, text)
    [stray] = found.stray_markers
    assert why in stray
    assert all(block.skip is None for block in found.blocks)


def test_a_marker_mentioned_in_the_prose_is_no_marker(tmp_path: Path) -> None:
    found = doc(tmp_path, "Mark it with `<!-- example: skip (reason) -->`.\n```sh\ntrue\n```\n")
    assert found.stray_markers == []
    assert found.blocks[0].skip is None


def test_commands_are_whole_shell_commands_with_their_continuations_and_comments() -> None:
    text = (
        "# a comment line\n\nAPI=https://x/api  # where\ncurl -X POST \\\n     -d '{}' \"$API\"\n"
        "if true; then\n  echo yes\nfi\n"
    )
    assert split_commands(text) == [
        "API=https://x/api  # where",
        "curl -X POST \\\n     -d '{}' \"$API\"",
        "if true; then\n  echo yes\nfi",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        split_commands("echo 'never closed\n")


def test_a_console_transcript_is_commands_and_what_they_print() -> None:
    assert console_steps("$ strom token list\nops\tadmin\n$ echo a \\\n> b\na b\n") == [
        ("strom token list", ["ops\tadmin"]),
        ("echo a \\\nb", ["a b"]),
    ]


def test_inline_strom_commands_are_found_also_across_a_line_break(tmp_path: Path) -> None:
    found = doc(
        tmp_path,
        "Run `strom charger\npassword <id>` or `.venv/bin/strom init`; the `strom` package and\n"
        "```sh\nstrom run\n```\nthen `strom keys show x`.\n",
    )
    assert found.inline == [
        ("docs/x.md:1", "strom charger password <id>"),
        ("docs/x.md:2", ".venv/bin/strom init"),
        ("docs/x.md:6", "strom keys show x"),
    ]


def test_a_command_inside_a_marker_is_no_prose(tmp_path: Path) -> None:
    found = doc(tmp_path, "<!-- example: skip (see `strom demo --once`) -->\n```sh\ntrue\n```\n")
    assert found.inline == []
    assert found.blocks[0].skip == "see `strom demo --once`"
