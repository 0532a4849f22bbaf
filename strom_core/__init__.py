"""The pure core of Strom: units, tariffs, the charging session and its ledger, ports."""

__version__ = "0.1.0"
