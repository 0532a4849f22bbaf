"""Hostile query strings against a running Strom's front door: never a 5xx, nothing stored.

Every generated request goes to the real HTTP server (the ``stack`` of ``tests/e2e``). A
request that is refused (a LUD error or a 4xx) must leave the sessions, payments, refunds and
outbox exactly as they were; the server must answer every request; and after the campaign a
normal offer still works.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lnurl_server.ratelimit import RateLimiter
from strom_storage.schema import outbox, payments, refunds, sessions
from tests.e2e.conftest import CHARGER, Stack
from tests.fuzz.conftest import CASES, examples

hostile = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e9",
            "1.5",
            "NaN",
            "999999999999999999999999",
            "0x10",
            " 1000",
            "1000 ",
            "\uff11\uff10\uff10\uff10",
            "\x00",
            "%00",
            "../../etc",
            "{}",
            "[]",
            "lnbc1",
            "lnbcrt10u1",
            "a" * 5000,
        ]
    ),
)
PATHS = [
    f"/lnurlp/{CHARGER}/1",
    f"/lnurlp/{CHARGER}/1/callback",
    f"/lnurlp/{CHARGER}/9/callback",
    f"/lnurlp/{CHARGER}/x/callback",
    "/lnurlp/nope/1/callback",
    f"/.well-known/lnurlp/{CHARGER}",
    "/lnurlw/0123456789abcdef",
    "/lnurlw/0123456789abcdef/callback",
    "/s/0123456789abcdef.json",
    "/s/0123456789abcdef/topup",
    f"/c/{CHARGER}",
    f"/c/{CHARGER}/1",
]
PARAMS = ["amount", "comment", "nostr", "k1", "pr", "secret", "lightning", "reserve"]


async def snapshot(stack: Stack) -> tuple[Any, ...]:
    async with stack.strom.db.reader() as conn:
        counts = []
        for table in (sessions, payments, refunds, outbox):
            counts.append(await conn.scalar(select(func.count()).select_from(table)))
        counts.append(tuple(await conn.scalars(select(sessions.c.state).order_by(sessions.c.id))))
    return tuple(counts)


@settings(
    max_examples=examples(250),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    params=st.dictionaries(st.sampled_from(PARAMS), hostile, max_size=4),
)
async def test_hostile_lnurl_requests_are_refused_and_change_nothing(
    stack: Stack, path: str, params: dict[str, str]
) -> None:
    CASES["lnurl query strings (live server)"] += 1
    unlimited = RateLimiter(per_minute=10**9, burst=10**9)  # the limiters are tested elsewhere
    stack.strom.front.per_client = stack.strom.front.per_charger = unlimited
    before = await snapshot(stack)
    response = await stack.http.get(f"{stack.base}{path}", params=params)
    assert response.status_code < 500, (path, params, response.text[:300])
    refused = response.status_code >= 400 or (
        response.headers.get("content-type", "").startswith("application/json")
        and response.json().get("status") == "ERROR"
    )
    if refused:
        assert await snapshot(stack) == before, (path, params)
    offer = await stack.get(stack.pay_url)  # and the sticker still works
    assert offer["tag"] == "payRequest", offer
