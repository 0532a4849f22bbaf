"""The OCPP endpoint admits only paths that name a charger id by Strom's one rule."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.ocpp.conftest import HarnessFactory


@pytest.mark.parametrize(
    "identity", ["example-1%0A", "cp-1%0D%0A", ".hidden", "..", "_pool", "-rf", "%2E%2E"]
)
async def test_a_path_that_is_no_charger_id_is_not_found_even_when_unknown_chargers_may_wait(
    start_harness: HarnessFactory, identity: str
) -> None:
    # With auto-registration on, any charger id is held for the operator's approval: these
    # must not be, or an id with a newline would reach the logs, the admin UI and a file name.
    harness = await start_harness(auto_register=True)
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{harness.url}/{identity}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert refused.value.response.status_code == 404
    assert harness.server.pending_chargers() == []


async def test_a_charger_id_by_the_rule_may_wait_for_approval(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(auto_register=True)
    async with connect(f"{harness.url}/DE.MUC_001", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
        assert [p.charger_id for p in harness.server.pending_chargers()] == ["DE.MUC_001"]
