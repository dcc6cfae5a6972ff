"""The trade state machine: eBL, cargo events, finance, consent (pure, deterministic)."""
