"""``/chargers/{charger_id}/cards``: the operator's cards of a charger (``[[cards]]``).

A card is an idTag Strom accepts without a Lightning payment (:mod:`strom_core.cards`): free,
or billed to a named account. ``PUT`` replaces the charger's whole list: it is checked (each
card, and no idTag twice as OCPP compares them), written to the profile file in place
(:meth:`cockpit.profiles.ProfileFiles.write_cards`) and applied to the running Strom. The
profiles in force are replaced, and their listeners follow: the core's card index
(:meth:`strom_services.cards.ProfileCards.watch`), so Authorize and StartTransaction accept a
new card and refuse a removed one at once; and the local-list service
(:meth:`strom_services.local_list.LocalListService.watch`), which sends a connected charger the
change (a differential update when that is shorter). The answer says what the charger answered
to that update; a charger that is offline gets its list at its next boot. Audited.
"""

from __future__ import annotations

from pydantic import ValidationError

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint, validation_text
from strom_core.cards import index_cards
from strom_core.config import CardConfig, ProfileConfig
from strom_core.errors import ConfigError

__all__ = ["CardsResource"]


def _cards_out(profile: ProfileConfig) -> list[m.CardOut]:
    return [
        m.CardOut(id_tag=c.id_tag, label=c.label, mode=c.mode.value, account=c.account)
        for c in profile.cards
    ]


def _checked(cards: list[m.CardIn]) -> list[CardConfig]:
    """The cards as the profile holds them.

    Raises:
        ApiError: 400 for a card that is not valid or an idTag listed twice.
    """
    try:
        checked = [CardConfig.model_validate(card.model_dump()) for card in cards]
    except ValidationError as exc:
        raise ApiError(400, "bad_request", f"cards: {validation_text(exc)}") from None
    try:
        index_cards(card.to_card() for card in checked)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"cards: {exc}") from None
    return checked


class CardsResource:
    """The operator's cards of each charger."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def get_cards(self, call: Call) -> m.CardsOut:
        """``GET /chargers/{charger_id}/cards``."""
        profile = self.ctx.profile(call)
        return m.CardsOut(charger_id=profile.id, cards=_cards_out(profile))

    async def put_cards(self, call: Call) -> m.CardsOut:
        """``PUT /chargers/{charger_id}/cards``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        body: m.CardsIn = call.body
        cards = _checked(body.cards)
        try:
            written = ctx.files.write_cards(profile.id, cards)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        _, restart = await ctx.apply(written)
        local_list = None
        if ctx.local_lists is not None and not restart:
            outcome = await ctx.local_lists.synced(profile.id)
            if outcome is not None:
                local_list = m.LocalListOut(
                    status=outcome.result.status.value,
                    detail=outcome.result.detail,
                    update=None if outcome.update is None else outcome.update.value,
                    version=outcome.version,
                )
        call.audit_detail.update(
            cards=[card.id_tag for card in cards],
            local_list=None if local_list is None else local_list.status,
            restart_required=restart,
        )
        return m.CardsOut(
            charger_id=profile.id,
            cards=_cards_out(written),
            local_list=local_list,
            restart_required=restart,
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/chargers/{charger_id}/cards",
                self.get_cards,
                "The operator's cards of the charger (idTags accepted without payment)",
                "chargers",
                m.CardsOut,
            ),
            e(
                "PUT",
                "/chargers/{charger_id}/cards",
                self.put_cards,
                "Replace the charger's cards: saved to its profile, accepted or refused at "
                "once, and sent to the charger's local list",
                "chargers",
                m.CardsOut,
                body=m.CardsIn,
                action="charger.cards",
                target="charger_id",
            ),
        ]
