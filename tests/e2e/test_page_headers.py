"""Every public HTML page carries its Content-Security-Policy, ``nosniff`` and no referrer, and
the policy allows exactly the inline script and styles the page carries (checked on the HTML as
served, with the standard library's HTML parser).
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

import httpx

from strom_web.csp import websocket_origin
from tests.e2e.conftest import CHARGER, Stack


class _Inline(HTMLParser):
    """The text of every <script> and <style>, and any inline style or handler attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.attributes: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [f"<{tag} {name}>" for name, _ in attrs if name == "style"]
        self.attributes += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            assert not any(name == "src" for name, _ in attrs)
            self.scripts.append("")
            self._open = self.scripts
        elif tag == "style":
            self.styles.append("")
            self._open = self.styles

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[-1] += data


def _sources(policy: str) -> dict[str, list[str]]:
    directives = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def check_page(response: httpx.Response, base: str) -> _Inline:
    """The page's security headers are all there and its policy allows exactly what it has."""
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    policy = _sources(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["img-src"] == ["data:"]
    assert policy["connect-src"] == ["'self'", websocket_origin(base)]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    inline = _Inline()
    inline.feed(response.text)
    assert inline.attributes == []  # no style="…" or onclick="…": a hash cannot allow those
    assert all(s.startswith("'sha256-") for s in policy["script-src"] + policy["style-src"])
    assert {_hash(text) for text in inline.scripts} <= set(policy["script-src"])
    assert {_hash(text) for text in inline.styles} <= set(policy["style-src"])
    assert inline.styles  # every page has its look
    return inline


async def test_every_public_page_sends_its_policy_and_allows_exactly_its_inline_code(
    stack: Stack,
) -> None:
    base = stack.base
    for path in (f"/c/{CHARGER}", f"/c/{CHARGER}/1", "/c/nobody", "/s/nothing?secret=x"):
        response = await stack.http.get(base + path)
        assert response.status_code in (200, 404), path
        check_page(response, base)

    status_url, session_url = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    response = await stack.http.get(session_url)
    assert response.headers["Cache-Control"] == "no-store"
    inline = check_page(response, base)
    assert len(inline.scripts) == 1  # the live figures, allowed by its hash


async def test_the_admin_ui_connects_only_to_its_own_origin(stack: Stack) -> None:
    response = await stack.http.get(stack.base + "/admin/")
    policy = _sources(response.headers["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", websocket_origin(stack.base)]
    assert policy["script-src"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_websocket_origin_follows_the_public_url_scheme() -> None:
    assert websocket_origin("https://charge.example.org") == "wss://charge.example.org"
    assert websocket_origin("http://127.0.0.1:8080") == "ws://127.0.0.1:8080"
    assert websocket_origin("http://abc.onion") == "ws://abc.onion"
