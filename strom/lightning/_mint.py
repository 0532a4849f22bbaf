"""Mint real, signed BOLT11 invoices with a node key (for the fake backend and its wallet).

Pure: the caller supplies the key, the hash, the secret and the timestamp.
"""

from __future__ import annotations

from bolt11 import (
    Bolt11,
    Feature,
    Features,
    FeatureState,
    MilliSatoshi,
    TagChar,
    Tags,
    encode,
)
from coincurve import PrivateKey

__all__ = ["MIN_FINAL_CLTV_EXPIRY", "mint_invoice", "node_pubkey"]

MIN_FINAL_CLTV_EXPIRY = 80  # what LND puts in its invoices


def node_pubkey(private_key_hex: str) -> str:
    """The compressed public key (hex) of a node key."""
    return PrivateKey(bytes.fromhex(private_key_hex)).public_key.format(compressed=True).hex()


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
    tags = Tags()
    tags.add(TagChar.payment_hash, payment_hash)
    tags.add(TagChar.payment_secret, payment_secret)
    if description_hash is not None:
        tags.add(TagChar.description_hash, description_hash.hex())
    else:
        tags.add(TagChar.description, memo or "")
    tags.add(TagChar.expire_time, expiry_s)
    tags.add(TagChar.min_final_cltv_expiry, MIN_FINAL_CLTV_EXPIRY)
    tags.add(
        TagChar.features,
        Features.from_feature_list(
            {
                Feature.var_onion_optin: FeatureState.required,
                Feature.payment_secret: FeatureState.required,
                Feature.basic_mpp: FeatureState.supported,
            }
        ),
    )
    invoice = Bolt11(
        currency=network,
        amount_msat=MilliSatoshi(amount_msat),
        date=created_at,
        tags=tags,
    )
    encoded: str = encode(invoice, private_key_hex)
    return encoded
