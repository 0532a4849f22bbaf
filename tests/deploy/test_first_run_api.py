"""The setup password of the first-run page, as the admin UI uses it (``/admin/setup``)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from cockpit.firstrun import MAX_FAILURES
from tests.e2e.conftest import running_stack


def logged_password(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in caplog.records if "setup password" in r.getMessage()]
    assert lines, "the setup password is in the log"
    found = re.search(r"setup password (\S+) \(made at this start", lines[-1])
    assert found, lines[-1]
    return found.group(1)


async def test_a_generated_setup_password_is_logged_and_the_first_sign_in_closes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STROM_SETUP_PASSWORD", raising=False)
    caplog.set_level(logging.INFO)
    async with running_stack(tmp_path) as stack:
        setup = f"{stack.base}/admin/setup"
        state = (await stack.http.get(setup)).json()
        assert state == {"accepting": True, "first": True, "password_from": "log"}
        password = logged_password(caplog)
        assert len(password) >= 20

        assert (await stack.http.post(setup, json={"password": "wrong"})).status_code == 403
        assert (await stack.http.post(setup, content=b"not json")).status_code == 400
        signed_in = await stack.http.post(setup, json={"password": password})
        assert signed_in.status_code == 201
        token = signed_in.json()["token"]
        me = await stack.http.get(
            f"{stack.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert (me.json()["actor"], me.json()["scope"]) == ("token:owner", "admin")

        assert (await stack.http.get(setup)).json()["accepting"] is False
        again = await stack.http.post(setup, json={"password": password})
        assert again.status_code == 409  # the set-up is done: tokens from now on


async def test_wrong_setup_passwords_are_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STROM_SETUP_PASSWORD", "the-app-password-of-umbrel")
    async with running_stack(tmp_path) as stack:
        setup = f"{stack.base}/admin/setup"
        for _ in range(MAX_FAILURES):
            assert (await stack.http.post(setup, json={"password": "guess"})).status_code == 403
        right = await stack.http.post(setup, json={"password": "the-app-password-of-umbrel"})
        assert right.status_code == 429  # even the right one, for the rest of the minute
        assert await stack.strom.cockpit.tokens.list() == []
