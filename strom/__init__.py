"""Strom: sell EV charging for Bitcoin over Lightning and nostr (the composition root)."""

from strom_core import __version__

__all__ = ["__version__"]
