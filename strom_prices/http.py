"""Fetching a provider's answer over HTTP (aiohttp); every failure becomes a ProviderError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp

from strom_prices.errors import ProviderError

__all__ = ["Fetcher", "HttpFetcher"]

_MAX_BYTES = 8 * 1024 * 1024


class Fetcher(Protocol):
    """GET a URL and return the body; raise ProviderError for anything but a 200 answer."""

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        """The body of a 200 answer."""
        ...


class HttpFetcher:
    """Fetcher over one aiohttp session (opened lazily, closed by :meth:`aclose`).

    Args:
        timeout_s: total time allowed per request.
    """

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        """The body of a 200 answer of at most 8 MiB.

        Raises:
            ProviderError: timeout, connection failure, another status, or a body too large.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": "strom (EV charging)"}
            )
        try:
            async with self._session.get(url, params=dict(params), headers=dict(headers)) as resp:
                body = await resp.content.read(_MAX_BYTES + 1)
                if resp.status != 200:
                    raise ProviderError(f"{source}: HTTP {resp.status}")
                if len(body) > _MAX_BYTES:
                    raise ProviderError(f"{source}: the answer is larger than 8 MiB")
                return body
        except TimeoutError:
            raise ProviderError(f"{source}: no answer in time") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{source}: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
