"""tradecredit domain core: record contract, settings, score scale, offers and the CLI."""

__version__ = "0.1.0"
