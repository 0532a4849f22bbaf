"""After a run that included the doc examples: which commands the docs hold and what became
of each block, so that a reader of the output sees that nothing was left out."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.docs.examples import all_docs

MODULE = "tests/docs/test_doc_"


def inventory() -> list[str]:
    """One line per shell block and its commands; a count of the other fences and spans."""
    lines: list[str] = []
    other: Counter[str] = Counter()
    inline = toml = 0
    for doc in all_docs():
        inline += len(doc.inline)
        for block in doc.blocks:
            if block.lang == "toml":
                toml += 1
            elif not block.is_shell:
                other[block.lang or "plain"] += 1
            if not block.is_shell:
                continue
            verdict = f"skipped: {block.skip}" if block.skip else "run"
            lines.append(f"{block.id} ({block.lang}) {verdict}")
            lines.extend(f"    {' '.join(command.split())}" for command in block.commands())
    kinds = ", ".join(f"{count} {lang}" for lang, count in sorted(other.items()))
    lines.append(f"configuration (toml), loaded as strom.toml or a profile: {toml}")
    lines.append(f"not commands, not run: {kinds} (README's demo transcript: its lines")
    lines.append("    are checked against what tests/cli requires of strom demo's output)")
    lines.append(f"`strom …` commands named in the prose, checked against the CLI: {inline}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = (r for rs in terminalreporter.stats.values() for r in rs if hasattr(r, "nodeid"))
    if not any(r.nodeid.startswith(MODULE) for r in reports):
        return
    terminalreporter.section("doc examples")
    for line in inventory():
        terminalreporter.write_line(line)
