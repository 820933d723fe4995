"""loyaltyctl: customer loyalty programs on an append-only SQLite ledger."""

__version__ = "0.1.0"
