"""Evaluation on real data sets: loaders, metrics, retrieval runs and reports (`qa eval`)."""

from .cli import main

__all__ = ["main"]
