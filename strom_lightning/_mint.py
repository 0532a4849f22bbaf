"""Mint real, signed BOLT11 invoices with a node key (for the fake backend and its wallet).

Pure: the caller supplies the key, the hash, the secret and the timestamp.

The ``bolt11`` library encodes through ``bitstring`` at several milliseconds an invoice, which
made minting the largest CPU cost of an LNURL callback on the fake backend (see
``bench/README.md``). :func:`mint_invoice` therefore writes the few fields the fake needs
directly as 5-bit groups (BOLT11's data part) and signs with coincurve, as the library does;
``tests/lightning/test_mint.py`` checks that it produces exactly the library's string for the
same inputs (deterministic RFC 6979 signatures), and that the library decodes it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bech32 import bech32_encode, convertbits
from coincurve import PrivateKey

__all__ = ["MIN_FINAL_CLTV_EXPIRY", "mint_invoice", "node_pubkey"]

MIN_FINAL_CLTV_EXPIRY = 80  # what LND puts in its invoices

# Tagged field types: the 5-bit value of each field's bech32 character (BOLT11).
_PAYMENT_HASH = 1  # p
_PAYMENT_SECRET = 16  # s
_DESCRIPTION = 13  # d
_DESCRIPTION_HASH = 23  # h
_EXPIRY = 6  # x
_MIN_FINAL_CLTV = 24  # c
_FEATURES = 5  # 9
# var_onion_optin (bit 8) and payment_secret (bit 14) required, basic_mpp (bit 17) optional.
_FEATURE_BITS = (1 << 8) | (1 << 14) | (1 << 17)
_MSAT_PER_UNIT = (("", 10**11), ("m", 10**8), ("u", 10**5), ("n", 100))


def node_pubkey(private_key_hex: str) -> str:
    """The compressed public key (hex) of a node key."""
    return PrivateKey(bytes.fromhex(private_key_hex)).public_key.format(compressed=True).hex()


def _amount(msat: int) -> str:
    """The human-readable part's amount: the largest unit that states it exactly."""
    for unit, size in _MSAT_PER_UNIT:
        if msat % size == 0:
            return f"{msat // size}{unit}"
    return f"{msat * 10}p"  # 1 pico-bitcoin is 0.1 msat


def _bytes_u5(data: bytes) -> list[int]:
    groups = convertbits(data, 8, 5, True)
    assert groups is not None  # only None on bad input, and bytes are never bad
    return groups


def _int_u5(value: int) -> list[int]:
    """Big-endian 5-bit groups without leading zero groups."""
    groups: list[int] = []
    while value:
        groups.append(value & 31)
        value >>= 5
    return groups[::-1]


def _field(kind: int, groups: Sequence[int]) -> list[int]:
    if len(groups) > 1023:  # the length is 10 bits: a description holds at most 639 bytes
        raise ValueError("BOLT11 field too long (a description holds at most 639 bytes)")
    return [kind, len(groups) >> 5, len(groups) & 31, *groups]


def mint_invoice(
    *,
    private_key_hex: str,
    network: str,
    amount_msat: int,
    payment_hash: str,
    payment_secret: str,
    created_at: int,
    expiry_s: int,
    memo: str | None,
    description_hash: bytes | None,
) -> str:
    """Encode and sign an invoice; returns the lowercase BOLT11 string."""
    if not 0 <= created_at < 2**35:
        raise ValueError("invoice timestamp out of range")
    hrp = f"ln{network}{_amount(amount_msat) if amount_msat else ''}"
    data = [(created_at >> shift) & 31 for shift in range(30, -1, -5)]
    data += _field(_PAYMENT_HASH, _bytes_u5(bytes.fromhex(payment_hash)))
    data += _field(_PAYMENT_SECRET, _bytes_u5(bytes.fromhex(payment_secret)))
    if description_hash is not None:
        data += _field(_DESCRIPTION_HASH, _bytes_u5(description_hash))
    else:
        data += _field(_DESCRIPTION, _bytes_u5((memo or "").encode()))
    data += _field(_EXPIRY, _int_u5(expiry_s))
    data += _field(_MIN_FINAL_CLTV, _int_u5(MIN_FINAL_CLTV_EXPIRY))
    data += _field(_FEATURES, _int_u5(_FEATURE_BITS))
    signing = bytes(convertbits(data, 5, 8, True) or b"")
    key = PrivateKey(bytes.fromhex(private_key_hex))
    signature = key.sign_recoverable(hrp.encode() + signing, hasher=_sha256)
    encoded = bech32_encode(hrp, data + _bytes_u5(signature))
    if encoded is None:  # pragma: no cover - bech32_encode returns None only on bad input
        raise ValueError("cannot encode the invoice")
    return str(encoded)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
