"""Rows and results as the API shows them: sessions, payments, refunds, boots, pages, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from cockpit import models as m
from cockpit.endpoint import ApiError
from strom_core.ports.agents import PublishResult
from strom_core.ports.station import BootView
from strom_core.units import format_kwh, format_sat
from strom_storage.reports import BadCursor, Page
from strom_storage.sessions import row_to_session

__all__ = [
    "boot_out",
    "csv_response",
    "kwh",
    "paged",
    "payment_out",
    "publish_answer",
    "refund_out",
    "sat",
    "session_out",
]


def sat(amount_msat: int) -> str:
    """An amount in sat as a plain decimal string (no unit, no separators)."""
    return format_sat(amount_msat).removesuffix(" sat").replace(",", "")


def kwh(energy_wh: int) -> str:
    """An energy in kWh as a decimal string (no unit)."""
    return format_kwh(energy_wh).removesuffix(" kWh")


def session_out(row: Any) -> m.SessionOut:
    """A session row as the API shows it."""
    session = row_to_session(row)
    return m.SessionOut(
        session_id=session.id,
        charger_id=session.charger_id,
        connector_id=session.connector_id,
        state=session.state.value,
        initiator=row.initiator,
        paid_msat=session.paid_msat,
        consumed_msat=session.consumed_msat,
        refunded_msat=session.refunded_msat,
        refundable_msat=session.refundable_msat,
        refund_in_flight_msat=session.refund_in_flight_msat,
        energy_wh=session.energy_wh,
        elapsed_s=session.elapsed_s,
        stop_reason=session.stop_reason,
        created_at=row.created_at,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
    )


def payment_out(row: Any) -> m.PaymentOut:
    """A payment row as the API shows it."""
    return m.PaymentOut(
        payment_hash=row.payment_hash,
        session_id=row.session_id,
        kind=row.kind,
        state=row.state,
        amount_msat=row.amount_msat,
        zap=row.zap_request is not None,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


def refund_out(row: Any) -> m.RefundOut:
    """A refund row as the API shows it."""
    return m.RefundOut(
        refund_id=row.id,
        session_id=row.session_id,
        state=row.state,
        amount_msat=row.amount_msat,
        fee_msat=row.fee_msat,
        detail=row.detail,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def boot_out(boot: BootView | None) -> m.BootOut | None:
    """What a charger said when it booted, or None."""
    if boot is None:
        return None
    return m.BootOut(
        vendor=boot.vendor,
        model=boot.model,
        serial=boot.charge_box_serial_number or boot.serial_number,
        firmware=boot.firmware_version,
    )


def publish_answer(result: PublishResult | None) -> m.PublishAnswer | None:
    """What the relays said to a status event, or None before the first."""
    if result is None:
        return None
    return m.PublishAnswer(
        event_id=result.event_id, accepted=result.accepted, ok=result.ok, failed=result.failed
    )


def csv_response(rows: Iterable[BaseModel], model: type[BaseModel], name: str) -> web.Response:
    """Rows as a CSV download (header from the model's fields)."""
    out = io.StringIO()
    fields = list(model.model_fields)
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_csv_cell(data[field]) for field in fields])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


_Item = TypeVar("_Item", bound=BaseModel)
_Page = TypeVar("_Page", bound=BaseModel)


async def paged(
    page: Awaitable[Page],
    convert: Callable[[Any], _Item],
    item: type[_Item],
    answer: type[_Page],
    form: str,
    name: str,
) -> _Page | web.Response:
    """A page of rows as JSON (``items``, ``next_cursor``) or as a CSV download.

    Raises:
        ApiError: 400 for a cursor this API did not hand out.
    """
    try:
        rows, cursor = await page
    except BadCursor as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    items = [convert(row) for row in rows]
    if form == "csv":
        return csv_response(items, item, name)
    return answer(items=items, next_cursor=cursor)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True
