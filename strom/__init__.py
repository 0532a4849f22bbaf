"""Strom: sell EV charging for Bitcoin over Lightning and nostr."""

__version__ = "0.1.0"
