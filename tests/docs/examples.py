"""The examples in README.md and docs/*.md: fenced blocks, the commands in them, skip markers,
and the ``strom …`` commands named inline in the prose.

A fenced block in ``sh``, ``bash``, ``shell`` or ``console`` is a shell example and is run by
``tests/docs/test_doc_examples.py``. One that cannot run in a test says so right above its
opening fence, with the reason::

    <!-- example: skip (needs a real LND node) -->

The marker must be the last non-blank line before the fence; a marker anywhere else (or above
a block that is no shell example) is an error, so that skipping stays visible and new blocks
run by default. Other fences (``text`` transcripts, ``toml``, ``json``, ``yaml``…) show output
or files, not commands, and are listed but not run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = frozenset({"sh", "bash", "shell", "console"})
MARKER = re.compile(r"\s*<!--\s*example:\s*(.*?)\s*-->\s*")
SKIP = re.compile(r"skip \((.+)\)")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")


def documents(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md, in reading order."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block of a document."""

    doc: str  # relative to the repository, e.g. "docs/api.md"
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # the body, without the fence's own indentation
    skip: str | None = None  # the reason of its skip marker

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL

    def commands(self) -> list[str]:
        """The commands of a shell block, one per complete shell command, comments kept."""
        if self.lang == "console":
            return [command for command, _ in console_steps(self.text)]
        return split_commands(self.text)


@dataclass(frozen=True)
class Doc:
    """What one document holds."""

    blocks: list[Block]
    stray_markers: list[str]  # "doc:line: why"
    inline: list[tuple[str, str]]  # (doc:line, the `strom …` code span)


def read(path: Path, root: Path = ROOT) -> Doc:
    """Every fenced block, skip marker and inline ``strom`` command of ``path``."""
    name = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    stray: list[str] = []
    prose: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None  # a marker waiting for its fence
    index = 0
    while index < len(lines):
        line = lines[index]
        opening = FENCE.match(line)
        if opening is None:
            if found := MARKER.fullmatch(line):
                if pending is not None:
                    stray.append(f"{name}:{pending[0]}: a marker with no block below it")
                pending = (index + 1, found.group(1))
                line = ""  # a comment: not shown, no prose
            elif line.strip() and pending is not None:
                stray.append(f"{name}:{pending[0]}: a marker with no block below it")
                pending = None
            prose.append((index + 1, line))
            index += 1
            continue
        end = _closing(lines, index, opening)
        indent = len(opening["indent"])
        body = "\n".join(_dedent(text, indent) for text in lines[index + 1 : end])
        skip = None
        if pending is not None:
            skip = _skip_reason(name, pending, opening["lang"], stray)
            pending = None
        blocks.append(Block(name, index + 1, opening["lang"], body, skip))
        prose.append((index + 1, ""))
        index = end + 1
    if pending is not None:
        stray.append(f"{name}:{pending[0]}: a marker with no block below it")
    return Doc(blocks, stray, _inline_strom(name, prose))


def _closing(lines: list[str], start: int, opening: re.Match[str]) -> int:
    fence = opening["fence"]
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return index
    raise ValueError(f"a fence opened on line {start + 1} is never closed")


def _dedent(text: str, indent: int) -> str:
    cut = len(text) - len(text.lstrip(" \t"))
    return text[min(cut, indent) :]


def _skip_reason(name: str, marker: tuple[int, str], lang: str, stray: list[str]) -> str | None:
    line, body = marker
    found = SKIP.fullmatch(body)
    if found is None or not found.group(1).strip():
        stray.append(f"{name}:{line}: expected <!-- example: skip (reason) -->, got {body!r}")
        return None
    if lang not in SHELL:
        stray.append(f"{name}:{line}: a skip marker above a {lang or 'plain'} block (not shell)")
        return None
    return found.group(1).strip()


INLINE = re.compile(r"`((?:\.venv/bin/)?strom [^`]+)`")


def _inline_strom(name: str, prose: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """``strom …`` code spans of the prose (a span may wrap onto the next line)."""
    text = "\n".join(line for _, line in prose)
    starts = [0]
    for _, line in prose:
        starts.append(starts[-1] + len(line) + 1)
    found = []
    for match in INLINE.finditer(text):
        number = prose[_line_index(starts, match.start())][0]
        found.append((f"{name}:{number}", " ".join(match.group(1).split())))
    return found


def _line_index(starts: list[int], offset: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high - 1:
        middle = (low + high) // 2
        if starts[middle] <= offset:
            low = middle
        else:
            high = middle
    return low


def split_commands(text: str) -> list[str]:
    """Split shell text into complete commands: the shortest runs of lines bash can parse.

    Blank and comment-only lines between commands are dropped; a command keeps its comment
    and its line continuations, as a reader would paste it.
    """
    commands: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if not candidate.rstrip().endswith("\\") and _parses(candidate):
            commands.append(candidate)
            current = []
    if current:
        raise ValueError(f"an incomplete shell command: {chr(10).join(current)!r}")
    return commands


def _parses(text: str) -> bool:
    bash = shutil.which("bash") or "bash"
    result = subprocess.run(  # bash -n only parses
        [bash, "-n"], input=text + "\n", capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """A ``console`` transcript: each ``$ `` command (``> `` continues it) and what it prints."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.startswith("> ") and steps and steps[-1][0].endswith("\\"):
            steps[-1] = (steps[-1][0] + "\n" + line[2:], steps[-1][1])
        elif steps:
            steps[-1][1].append(line)
    return steps


def all_docs(root: Path = ROOT) -> list[Doc]:
    """:func:`read` for every document."""
    return [read(path, root) for path in documents(root)]
