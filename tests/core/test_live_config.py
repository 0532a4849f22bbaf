"""The configuration in force is one object: a reload replaces it and tells who asked."""

from __future__ import annotations

from strom_core.config import LiveConfig, ServerConfig, StromConfig


def test_a_reload_is_seen_by_every_holder_and_told_to_listeners_in_order() -> None:
    first = StromConfig()
    second = StromConfig(server=ServerConfig(port=9090))
    live = LiveConfig(first)
    holder_a, holder_b = live, live  # two parts hold the same object
    told: list[tuple[str, int]] = []
    live.on_change(lambda config: told.append(("a", config.server.port)))
    live.on_change(lambda config: told.append(("b", config.server.port)))

    assert holder_a.current is first
    live.replace(second)

    assert holder_a.current is second
    assert holder_b.current is second
    assert told == [("a", 9090), ("b", 9090)]
