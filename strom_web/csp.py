"""The security headers of every HTML page Strom serves: Content-Security-Policy and friends.

The public pages run one inline script (the session page's live figures) and two inline style
sheets, all from files of this package that are inlined into the page. The policy allows
exactly those by their SHA-256 hashes (CSP Level 2), so no other script — injected markup, a
compromised template value — runs, and nothing loads from anywhere else. Inlining rather than
serving them as files keeps each page one response (a phone at a charger often has a weak
signal) and names the exact bytes allowed instead of everything the origin serves.

``connect-src`` names ``'self'`` and, explicitly, the websocket origin of
``server.public_url`` (``wss://host`` for ``https://host``). CSP Level 3 says ``'self'`` covers
the page's own host over ``ws:``/``wss:``, and current Chromium follows it (the browser tests
check a page whose policy says only ``'self'``), but older browsers did not (Safari until
version 16, 2022), and the session page's live stream must work there too. The pages are
reached at the public URL, so naming it is no wider than ``'self'``. No bare ``ws:``/``wss:``
scheme source: that would allow a socket to any host.

``Referrer-Policy: no-referrer`` because a session page's URL carries its secret in the query:
a link followed from it must not hand that URL to another site.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "map_policy",
    "page_headers",
    "page_policy",
    "source_hash",
    "url_origin",
    "websocket_origin",
]


def source_hash(text: str) -> str:
    """The CSP source expression allowing exactly this inline script or style text."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def websocket_origin(public_url: str) -> str:
    """``wss://host[:port]`` for an https public URL, ``ws://…`` for an http one."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def page_policy(*, scripts: Iterable[str], styles: Iterable[str], public_url: str) -> str:
    """The Content-Security-Policy of the public pages.

    Args:
        scripts: the inline scripts the pages carry (their exact text).
        styles: the inline style sheets the pages carry (their exact text).
        public_url: ``server.public_url``; its websocket origin may be connected to.
    """
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(source_hash(text) for text in scripts),
            "style-src " + " ".join(source_hash(text) for text in styles),
            "img-src data:",  # the favicon; QR codes are inline SVG
            f"connect-src 'self' {websocket_origin(public_url)}",
            "base-uri 'none'",
            "form-action 'self'",  # the session page's "charge slower" form
            "frame-ancestors 'none'",
        ]
    )


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (a tile URL template keeps its placeholders out)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def map_policy(
    *,
    scripts: Iterable[str],
    styles: Iterable[str],
    public_url: str,
    relays: Iterable[str],
    tile_url: str,
) -> str:
    """The Content-Security-Policy of the network map (``/map``).

    Like :func:`page_policy`, and besides: the map's tiles may load from the tile server's
    origin (none when ``tile_url`` is empty), and its script may open a websocket to each
    relay it reads, named by origin (``wss://relay.example``), never a bare scheme.

    Args:
        scripts: the inline scripts of the page (their exact text).
        styles: the inline style sheets of the page (their exact text).
        public_url: ``server.public_url``; its websocket origin may be connected to.
        relays: the external relays' URLs the page reads.
        tile_url: the tile URL template, or empty for no tiles.
    """
    images = ["data:"] + ([url_origin(tile_url)] if tile_url else [])
    sockets = dict.fromkeys([websocket_origin(public_url), *(url_origin(url) for url in relays)])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(source_hash(text) for text in scripts),
            "style-src " + " ".join(source_hash(text) for text in styles),
            "img-src " + " ".join(images),
            "connect-src 'self' " + " ".join(sockets),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(policy: str) -> dict[str, str]:
    """The headers of an HTML page under ``policy``."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
