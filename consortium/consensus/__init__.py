"""The BFT replica (Tendermint, arXiv:1807.04938 Algorithm 1), sans-I/O: step(event) -> actions."""
