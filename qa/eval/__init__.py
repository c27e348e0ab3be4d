"""Evaluation on real data sets (`qa eval`, see `cli`).

`datasets` (loaders for ../shared/eval-data), `metrics` (pure metric functions), `retrieval`
(the cached index of a data set, ranking metrics), `answers` (qa.ask answers and citations
judged), `refusal` (refusal rates, threshold calibration), `run` (one evaluation run),
`report` (table, JSON, markdown) and `plots` (PNG plots).
"""

from qa.eval.cli import main

__all__ = ["main"]
