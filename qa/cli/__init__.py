"""The `qa` command line."""

from qa.cli.main import main

__all__ = ["main"]
