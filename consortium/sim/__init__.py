"""The deterministic simulator: virtual clock, seeded network, faults, checkers."""
