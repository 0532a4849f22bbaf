"""The operator's power limits over the API, against the simulated charger.

Setting the site limit writes the profile file (comments kept), puts it in force and sends it to
the charger, which then draws less; the composite schedule shows it; null removes it; every
write is audited.
"""

from __future__ import annotations

import pytest

from tests.cockpit.conftest import CHARGER, Cockpit

pytestmark = pytest.mark.slow


async def test_the_site_limit_is_written_sent_shown_and_removed(cockpit: Cockpit) -> None:
    strom = cockpit.stack.strom
    sim = cockpit.stack.charger
    path = strom.config.paths.profiles / f"{CHARGER}.toml"
    path.write_text("# the operator's note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    answer = await cockpit.call("PUT", f"/chargers/{CHARGER}/site-limit", json={"limit_kw": "7.4"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["restart_required"]) == ("Accepted", False)
    assert "site_limit_kw = 7.4" in path.read_text(encoding="utf-8")
    assert "# the operator's note" in path.read_text(encoding="utf-8")
    assert strom.config.profile(CHARGER).site_limit_w == 7_400
    assert sim.power_w(1) == 7_400

    schedule = await cockpit.call(
        "GET", f"/chargers/{CHARGER}/composite-schedule", params={"connector_id": "0"}
    )
    assert schedule.status_code == 200, schedule.text
    shown = schedule.json()
    assert shown["status"] == "Accepted"
    assert [(p["start_s"], p["limit_w"]) for p in shown["periods"]] == [(0, 7_400)]
    assert float(shown["site_limit_kw"]) == 7.4

    removed = await cockpit.call("PUT", f"/chargers/{CHARGER}/site-limit", json={"limit_kw": None})
    assert removed.json()["status"] == "Accepted"
    assert "site_limit_kw" not in path.read_text(encoding="utf-8")
    assert strom.config.profile(CHARGER).site_limit_w is None
    assert sim.power_w(1) == 11_000

    audit = await cockpit.call("GET", "/audit", params={"limit": "10"})
    actions = [row["action"] for row in audit.json()["items"]]
    assert actions.count("api.charger.site_limit") == 2


async def test_a_limit_out_of_range_or_from_a_reader_changes_nothing(cockpit: Cockpit) -> None:
    strom = cockpit.stack.strom
    for bad in ("0.5", "1001", "abc", "7.4001"):
        answer = await cockpit.call(
            "PUT", f"/chargers/{CHARGER}/site-limit", json={"limit_kw": bad}
        )
        assert answer.status_code == 400, (bad, answer.text)
    reader = await cockpit.call(
        "PUT",
        f"/chargers/{CHARGER}/site-limit",
        json={"limit_kw": "5"},
        token=cockpit.read_token,
    )
    assert reader.status_code == 403
    assert strom.config.profile(CHARGER).site_limit_w is None
    assert cockpit.stack.charger.power_w(1) == 11_000
