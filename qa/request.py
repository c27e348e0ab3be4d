"""Checking one answer request, once for every face: the mode rule, k, temperature.

The rule for the mode: as asked; else "llm" when a model is given; else `Settings.mode`
(QA_MODE). `qa.Engine.request` applies these and resolves the model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.config import K_MAX, MAX_TEMPERATURE, Settings
from qa.errors import BadInput

MODES = ("llm", "extractive")


@dataclass(frozen=True)
class Request:
    """One answer request, checked: the settings it runs with, its mode, and the model file
    (llm mode only)."""

    settings: Settings
    mode: str
    model: Path | None


def resolve_mode(mode: str | None, model, settings: Settings) -> str:
    """The answer mode: as given; else "llm" when a model is passed; else `settings.mode`."""
    if mode is None:
        mode = "llm" if model is not None else settings.mode
    if mode not in MODES:
        raise BadInput(f"unknown answer mode {mode!r}: use llm or extractive")
    return mode


def check_k(k) -> int:
    """`k` as a whole number in 1..K_MAX, else BadInput."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or int(k) != k:
        raise BadInput(f"k must be a whole number, got {k!r}")
    if not 1 <= int(k) <= K_MAX:
        raise BadInput(f"k must be between 1 and {K_MAX}, got {int(k)}")
    return int(k)


def check_temperature(temperature) -> None:
    if temperature is not None and not 0.0 <= float(temperature) <= MAX_TEMPERATURE:
        raise BadInput(f"temperature must be between 0 and {MAX_TEMPERATURE}, got {temperature}")
