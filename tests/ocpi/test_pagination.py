"""The paginated list helper, served by a module over real HTTP and crawled by its Link header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpi_server.protocol import InterfaceRole, PageRequest, format_datetime, page
from ocpi_server.server import Answer, Module, OcpiRequest
from tests.ocpi.conftest import Cpo
from tests.ocpi.test_credentials import register_emsp

T0 = datetime(2027, 1, 1, tzinfo=UTC)
OBJECTS = [{"id": str(n), "last_updated": T0 + timedelta(hours=n)} for n in range(23)]
MAX = 5


def serve_objects(cpo: Cpo) -> None:
    async def objects(call: OcpiRequest) -> Answer:
        request = PageRequest.parse(call.request.query, MAX)
        chosen = [
            {"id": o["id"], "last_updated": format_datetime(o["last_updated"])}
            for o in OBJECTS
            if request.admits(o["last_updated"])
        ]
        served = page(chosen, request, f"{cpo.server.base_url}/2.2.1/locations", MAX)
        return Answer(served.data, headers=served.headers)

    cpo.server.register(Module("locations", (InterfaceRole.SENDER,), {"GET": objects}))


async def test_following_link_reaches_every_object_once_with_total_and_limit(cpo: Cpo) -> None:
    serve_objects(cpo)
    _, token = await register_emsp(cpo)
    url: str | None = f"{cpo.base}/ocpi/2.2.1/locations?limit=1000"  # above the maximum: capped
    seen: list[str] = []
    pages = 0
    while url is not None:
        answer = await cpo.call("GET", url, token)
        assert answer.headers["X-Total-Count"] == "23"
        assert answer.headers["X-Limit"] == str(MAX)
        data = answer.json()["data"]
        assert len(data) <= MAX
        seen += [o["id"] for o in data]
        pages += 1
        link = answer.headers.get("Link")
        url = None if link is None else link[1 : link.index(">")]
    assert seen == [str(n) for n in range(23)]
    assert pages == 5


async def test_the_link_keeps_the_date_filters_and_the_total_counts_only_matches(cpo: Cpo) -> None:
    serve_objects(cpo)
    _, token = await register_emsp(cpo)
    since = format_datetime(T0 + timedelta(hours=10))
    until = format_datetime(T0 + timedelta(hours=20))
    url: str | None = f"{cpo.base}/ocpi/2.2.1/locations?date_from={since}&date_to={until}&limit=4"
    seen: list[str] = []
    while url is not None:
        answer = await cpo.call("GET", url, token)
        assert answer.headers["X-Total-Count"] == "10"
        seen += [o["id"] for o in answer.json()["data"]]
        link = answer.headers.get("Link")
        url = None if link is None else link[1 : link.index(">")]
    assert seen == [str(n) for n in range(10, 20)]


async def test_a_bad_paging_parameter_is_2001_and_serves_nothing(cpo: Cpo) -> None:
    serve_objects(cpo)
    _, token = await register_emsp(cpo)
    answer = await cpo.call("GET", "/ocpi/2.2.1/locations?offset=-3", token)
    assert answer.json()["status_code"] == 2001
    assert "data" not in answer.json()
