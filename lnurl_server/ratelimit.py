"""The front door's rate limits: the core's token buckets (:mod:`strom_core.ratelimit`).

Per client address and per charger, creating an invoice costs the backend a little and writes a
row; a script hammering a sticker's LNURL must not fill the database or slow the charger's real
drivers.
"""

from strom_core.ratelimit import RateLimiter

__all__ = ["RateLimiter"]
