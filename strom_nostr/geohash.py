"""Geohash encoding for ``g`` tags.

Relays match tag values exactly, so a client looking for chargers near it asks for the
geohash cell of its position at some precision, and a charger must carry the geohash of its
position at *every* precision a client may ask for: :func:`prefixes` gives them all.
"""

from __future__ import annotations

import math

__all__ = ["ALPHABET", "MAX_PRECISION", "bounding_box", "encode", "prefixes"]

ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_PRECISION = 12


def encode(lat: float, lon: float, precision: int = 9) -> str:
    """The geohash of a position.

    Args:
        lat: latitude in degrees, -90..90.
        lon: longitude in degrees, -180..180.
        precision: number of characters, 1..12 (9 is about 5 m).

    Returns:
        The geohash, lowercase.

    Raises:
        ValueError: a coordinate is out of range or not finite, or the precision is.
    """
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"latitude must be within -90..90, got {lat!r}")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"longitude must be within -180..180, got {lon!r}")
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be 1..{MAX_PRECISION}, got {precision!r}")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    chars: list[str] = []
    value = 0
    bits = 0
    even = True  # bits alternate, starting with longitude
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            bit = lon >= mid
            lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bit = lat >= mid
            lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
        value = (value << 1) | bit
        bits += 1
        even = not even
        if bits == 5:
            chars.append(ALPHABET[value])
            value = 0
            bits = 0
    return "".join(chars)


def bounding_box(geohash: str) -> tuple[float, float, float, float]:
    """The cell of a geohash as ``(lat_min, lat_max, lon_min, lon_max)``.

    Raises:
        ValueError: a character is not in the geohash alphabet.
    """
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    even = True
    for char in geohash:
        index = ALPHABET.find(char)
        if index < 0:
            raise ValueError(f"not a geohash character: {char!r}")
        for shift in range(4, -1, -1):
            bit = (index >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lat_hi, lon_lo, lon_hi


def prefixes(lat: float, lon: float, max_precision: int = 9) -> list[str]:
    """The geohash of a position at every precision from 1 to ``max_precision``."""
    full = encode(lat, lon, max_precision)
    return [full[:n] for n in range(1, max_precision + 1)]
