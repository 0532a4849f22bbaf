"""The OCPI 2.2.1 front door: Strom as a Charge Point Operator (CPO) for roaming partners.

eMSPs (the apps and cards drivers already have) connect with the credentials handshake, pull
Strom's locations and tariffs, receive sessions and CDRs, send commands and share their
tokens. ``protocol`` (the envelope, status codes, headers, pagination) and ``objects``
(Strom's chargers, tariffs and sessions as OCPI objects) are pure; the rest speaks HTTP.
See docs/ocpi.md.
"""
