"""consortium: a multi-node BFT blockchain simulator for the Shanghai-Hong Kong
cargo-trade consortium. See README.md and ../shared/DESIGN.md."""

__version__ = "0.1.0"
