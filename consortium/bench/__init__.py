"""Load generation and every benchmark (live consortium, ledger). They read the clock: not pure layers."""
