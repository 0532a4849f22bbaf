"""What a charger id may be: the one rule, used everywhere an id enters Strom.

A charger id is the last segment of the charger's OCPP URL (``/ocpp/<id>``), a path segment of
its public pages and LNURLs (``/c/<id>``, ``/lnurlp/<id>/1``), the ``d`` tag of its nostr status
event, a command-line argument, and the name of two files: ``profiles/<id>.toml`` and
``keys/<id>.key``. So the rule is the narrowest that real chargers fit:

* 1 to 48 characters (OCPP 1.6 ``chargeBoxIdentity`` is a CiString48);
* ASCII letters, digits, ``.``, ``_`` and ``-`` — safe unescaped in a URL, a file name, a log
  line and a shell;
* the first character a letter or digit — so no id is ``.`` or ``..`` (a path out of its
  folder), a hidden file (``.x``), an option to a command (``-x``), or the relay pool's own key
  name ``_pool``;
* matched in full: a trailing newline (``/ocpp/cp-1%0A``) is not an id. Python's
  ``re.match`` with ``$`` would let one through; this module uses ``fullmatch``.

Every entry point checks ids with :func:`is_charger_id` or :func:`check_charger_id`: the
configuration (profile ids), the OCPP server's admission, the REST API, the front door's
routes and the key store.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CHARGER_ID_PATTERN", "CHARGER_ID_RULE", "check_charger_id", "is_charger_id"]

CHARGER_ID_PATTERN: Final = "[A-Za-z0-9][A-Za-z0-9._-]{0,47}"
"""The rule as a regular expression to be matched in full (JSON Schema: ``^…$``)."""

CHARGER_ID_RULE: Final = "1-48 letters, digits, '.', '_' or '-', starting with a letter or digit"
"""The rule in words, for error messages."""

_CHARGER_ID: Final = re.compile(CHARGER_ID_PATTERN)


def is_charger_id(value: object) -> bool:
    """Whether ``value`` is a valid charger id (a ``str`` matching the rule in full)."""
    return isinstance(value, str) and _CHARGER_ID.fullmatch(value) is not None


def check_charger_id(value: str) -> str:
    """Return ``value`` when it is a valid charger id.

    Raises:
        ValueError: naming the id and the rule.
    """
    if not is_charger_id(value):
        raise ValueError(f"charger id {value!r}: expected {CHARGER_ID_RULE}")
    return value
