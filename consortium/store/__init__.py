"""SQLite block store, state and the double-sign guard."""
