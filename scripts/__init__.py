"""chaintape: a self-hosted recorder for Deribit options and derivatives market data."""

__version__ = "0.1.0"
