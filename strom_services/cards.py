"""The operator's cards as the OCPP core sees them: which idTag is whose, and its session.

Implements :class:`strom_core.cards.CardDesk` on the profiles (``[[cards]]``) and the tariff
book. A card belongs to the charger whose profile lists it; a start with it opens a post-paid
session (see :mod:`strom_core.cards`) priced at the tariff in force on that charger at the
start, frozen into the session like any other.

The index follows the profiles in force: :meth:`ProfileCards.watch` re-reads it whenever the
:class:`~strom_core.config.LiveConfig` is replaced (the operator's cards saved through the API,
a profile applied while Strom runs), so a card added is accepted at once and a card removed is
refused at once, by Authorize and StartTransaction alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from strom_core.cards import Card, index_cards, tag_key
from strom_core.config import LiveConfig, ProfileConfig, StromConfig
from strom_core.session import Session, new_session
from strom_core.tariff import Tariff

__all__ = ["ProfileCards", "card_tag"]


def card_tag(session_id: str) -> str:
    """The session idTag of a card session (sessions own their tag; the card is the payer)."""
    return f"C{session_id}"[:20]


class ProfileCards:
    """The cards of each charger's profile.

    Args:
        profiles: the chargers' profiles.
        tariff_for: the tariff in force on a charger (what a new session is priced at).
        meter_interval_s: the chargers' meter interval.
        start_timeout_s: how long a session may wait for its transaction.
    """

    def __init__(
        self,
        profiles: Iterable[ProfileConfig],
        tariff_for: Callable[[ProfileConfig], Tariff],
        *,
        meter_interval_s: int,
        start_timeout_s: int,
    ) -> None:
        self._profiles: dict[str, ProfileConfig] = {}
        self._cards: dict[str, Mapping[str, Card]] = {}
        self.reload(profiles)
        self._tariff_for = tariff_for
        self._meter_interval_s = meter_interval_s
        self._start_timeout_s = start_timeout_s

    def reload(self, profiles: Iterable[ProfileConfig]) -> None:
        """Index the cards of ``profiles`` (every charger's, replacing the index)."""
        by_id = {p.id: p for p in profiles}
        self._cards = {p.id: index_cards(c.to_card() for c in p.cards) for p in by_id.values()}
        self._profiles = by_id

    def watch(self, live: LiveConfig) -> None:
        """Follow the profiles in force: re-index whenever ``live`` is replaced."""

        def changed(config: StromConfig) -> None:
            self.reload(config.profiles)

        live.on_change(changed)

    def cards(self, charger_id: str) -> list[Card]:
        """The charger's cards, in the profile's order."""
        return list(self._cards.get(charger_id, {}).values())

    def card(self, charger_id: str, id_tag: str) -> Card | None:
        """The charger's card with this idTag (compared as OCPP does), if any."""
        return self._cards.get(charger_id, {}).get(tag_key(id_tag))

    def card_session(
        self, charger_id: str, connector_id: int, id_tag: str, session_id: str
    ) -> Session | None:
        """A new post-paid session for a start with the charger's card, or None."""
        card = self.card(charger_id, id_tag)
        if card is None:
            return None
        return self.postpaid_session(charger_id, connector_id, session_id, card.payer)

    def postpaid_session(
        self,
        charger_id: str,
        connector_id: int,
        session_id: str,
        payer: str,
        tag: str = "C",
        *,
        reserve_minutes: int = 0,
        reservation_id: int | None = None,
    ) -> Session | None:
        """A new post-paid session of ``payer`` on the connector; None: no such connector.

        Priced at the tariff in force on the charger, frozen into the session. Its idTag is
        its own (``tag`` + session id), whoever pays. ``reserve_minutes``: a post-paid
        reservation (:func:`strom_core.session.new_session`, which raises ``LedgerError``
        for minutes the tariff does not allow).
        """
        profile = self._profiles.get(charger_id)
        if profile is None:
            return None
        connector = next((c for c in profile.connectors if c.id == connector_id), None)
        if connector is None:
            return None
        return new_session(
            session_id=session_id,
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=f"{tag}{session_id}"[:20],
            tariff=self._tariff_for(profile),
            power_w=connector.max_power_w,
            meter_interval_s=self._meter_interval_s,
            start_timeout_s=self._start_timeout_s,
            payer=payer,
            reserve_minutes=reserve_minutes,
            reservation_id=reservation_id,
        )

    def profile(self, charger_id: str) -> ProfileConfig | None:
        """The charger's profile in force, if it is one of Strom's chargers."""
        return self._profiles.get(charger_id)
