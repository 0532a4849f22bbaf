"""Session secrets derived from the server key, so that none is ever stored.

Theory of operation
-------------------
A session's secret is what its payer's links carry (session page, LNURL-withdraw refund,
top-up); the database keeps only its SHA-256 (``sessions.secret_hash``). Instead of a random
value that someone would have to keep until the refund window passes, the secret is derived:

    session_key = HMAC-SHA-256(server_key, "strom session secret v1")
    secret      = base64url(HMAC-SHA-256(session_key, session_id))[:32]

``server_key`` is the 32 random bytes of ``<data_dir>/keys/_server.key`` (mode 0600, sealed
with ``STROM_MASTER_KEY`` when that is set); the composition root reads it and derives the
session key, which it hands to whatever mints secrets
(:class:`strom_services.payments.PaymentService`)
and to the agents, which recompute a zapper's secret whenever a DM needs a refund or top-up
link. Session ids are random, so a secret is as unguessable as a random one of 192 bits, and
whoever holds the server key can recompute the secret of every session; the key file is
therefore as precious as the database (back them up together, keep both private).

Every session gets a derived secret, whoever started it: one rule, no branch to get wrong, and
the main database keeps the same hash as before. A secret made before this scheme cannot be
recomputed; see :mod:`agent.store` for how those few are kept until their refund window ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["SESSION_KEY_LABEL", "SessionSecrets", "derive_session_key"]

SESSION_KEY_LABEL = b"strom session secret v1"
_SECRET_CHARS = 32  # 192 bits, as long as the random secrets made before


def derive_session_key(server_key: bytes) -> bytes:
    """The key that session secrets are derived from.

    Args:
        server_key: the server's 32-byte key.

    Returns:
        ``HMAC-SHA-256(server_key, "strom session secret v1")``.

    Raises:
        ValueError: the server key is not 32 bytes.
    """
    if len(server_key) != 32:
        raise ValueError("the server key is 32 bytes")
    return hmac.new(server_key, SESSION_KEY_LABEL, hashlib.sha256).digest()


class SessionSecrets:
    """Computes session secrets from the session key.

    Args:
        session_key: the 32 bytes of :func:`derive_session_key`.

    Raises:
        ValueError: the key is not 32 bytes.
    """

    __slots__ = ("_key",)

    def __init__(self, session_key: bytes) -> None:
        if len(session_key) != 32:
            raise ValueError("the session key is 32 bytes")
        self._key = session_key

    def secret(self, session_id: str) -> str:
        """The secret of a session: 32 URL-safe characters, the same every time."""
        digest = hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:_SECRET_CHARS]

    def __repr__(self) -> str:
        return "SessionSecrets(<key>)"
