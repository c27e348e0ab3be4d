"""The `qa` command line."""

from qa.cli.main import PARTIAL, main

__all__ = ["PARTIAL", "main"]
