"""The agent's modules import one another in one direction only: no import circles.

The handlers (zaps, conversations, operator, notifications) take a narrow context
(:mod:`agent.context`) instead of the whole ``Agent``, so nothing imports ``agent.agent`` back.
import-linter's ``acyclic-agent-nostr`` contract says the same in the lint step; this test
says it where the agents' tests run.
"""

from __future__ import annotations

import grimp
import pytest


def circles(graph: grimp.ImportGraph, package: str) -> list[tuple[str, str]]:
    """Pairs of modules of ``package`` that reach each other through imports."""
    modules = sorted(m for m in graph.find_descendants(package) if m.count(".") == 1)
    return [
        (first, second)
        for i, first in enumerate(modules)
        for second in modules[i + 1 :]
        if graph.chain_exists(first, second, as_packages=True)
        and graph.chain_exists(second, first, as_packages=True)
    ]


@pytest.mark.parametrize("package", ["agent", "strom_nostr"])
def test_the_package_has_no_import_circle(package: str) -> None:
    graph = grimp.build_graph(package, cache_dir=None)
    assert circles(graph, package) == []


def test_a_circle_through_the_agent_would_be_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("agent", "agent.agent", "agent.context", "agent.zaps"):
        graph.add_module(module)
    graph.add_import(importer="agent.agent", imported="agent.zaps")
    graph.add_import(importer="agent.zaps", imported="agent.context")
    assert circles(graph, "agent") == []
    graph.add_import(importer="agent.zaps", imported="agent.agent")  # a handler needing Agent
    assert circles(graph, "agent") == [("agent.agent", "agent.zaps")]
