"""Compare sentence splitters on SQuAD dev contexts: qa's former regex splitter (kept here as
the baseline), nupunkt (what `qa.ingest.sentences` uses now) and pysbd.

    python -m qa.ingest.compare_splitters [--data PATH] [--limit N] [--show 30]

Prints, per splitter: (a) how often a gold answer span is cut by a sentence boundary (lower is
better: an answer split over two sentences cannot be quoted from one), (b) agreement with the regex
splitter (boundary precision/recall/F1, contexts split identically), (c) speed in sentences/s (a second, warm pass);
then `--show` boundaries where a library and the regex disagree, to check by eye. Libraries that are
not installed (`pysbd`, `nupunkt`) are skipped. The data is read in place from the zip.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.ingest.sentences import _append_trimmed, split_sentences

DEFAULT_DATA = Path("/work/shared/eval-data/squad/dev-v1.1.json.zip")
Spans = list[tuple[int, int]]
Splitter = Callable[[str], Spans]

# A sentence ends at . ! ? or … (plus closing quotes/brackets) before whitespace,
# or at a paragraph break (a blank line).
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|\n[ \t]*\n")
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st vs etc inc ltd co corp fig no nos vol eq al approx dept
    est jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s u.k a.m p.m""".split()
)
_WORD_BEFORE = re.compile(r"([\w.]+)[.]$")
_NEXT = re.compile(r"\s*(\S)")


def _is_abbreviation(text: str, end: int) -> bool:
    m = _WORD_BEFORE.search(text, max(0, end - 12), end)
    if not m:
        return False
    word = m.group(1).lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def regex_split(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in `text[start:end]`, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _END.finditer(text, start, end):
        stop = m.end()
        if m.group(0)[0] == ".":
            if _is_abbreviation(text, m.start() + 1):
                continue
            nxt = _NEXT.match(text, stop, end)
            if nxt and nxt.group(1).islower():
                continue
        _append_trimmed(text, pos, stop, spans)
        pos = stop
    _append_trimmed(text, pos, end, spans)
    return spans


@dataclass(frozen=True)
class Context:
    text: str
    answers: tuple[tuple[int, int], ...]  # distinct gold answer spans (start, end)


@dataclass(frozen=True)
class Figures:
    name: str
    sentences: int
    seconds: float
    answers: int
    answers_cut: int
    precision: float  # of its boundaries, the share the regex splitter also has
    recall: float  # of the regex splitter's boundaries, the share it also has
    identical: float  # contexts split exactly as the regex splits them

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def read_squad(path: Path) -> list[Context]:
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json"))
        data = json.loads(zf.read(name))
    contexts = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            text = paragraph["context"]
            answers = set()
            for qa in paragraph["qas"]:
                for answer in qa["answers"]:
                    start = answer["answer_start"]
                    end = start + len(answer["text"])
                    if text[start:end] == answer["text"]:
                        answers.add((start, end))
            contexts.append(Context(text, tuple(sorted(answers))))
    return contexts


def trimmed(text: str, spans: Spans) -> Spans:
    """Spans with surrounding whitespace removed, empty ones dropped."""
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def aligned(text: str, pieces: list[str]) -> Spans:
    """Offsets of sentence strings in `text`, found in order (for libraries that return text)."""
    spans, pos = [], 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        at = text.find(piece, pos)
        if at < 0:
            raise ValueError(f"sentence not found in the text: {piece[:60]!r}")
        spans.append((at, at + len(piece)))
        pos = at + len(piece)
    return spans


def splitters() -> dict[str, Splitter]:
    found: dict[str, Splitter] = {"regex": regex_split}
    try:
        split_sentences("Warm up. The model loads once.")
        found["nupunkt"] = split_sentences  # qa's splitter: nupunkt within paragraphs
    except ImportError:
        pass
    try:
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False)
        found["pysbd"] = lambda text: aligned(text, segmenter.segment(text))
    except ImportError:
        pass
    return found


def boundaries(spans: Spans) -> set[int]:
    """Where one sentence ends and the next begins: the end offsets of all but the last."""
    return {b for _, b in spans[:-1]}


def cuts(spans: Spans, answer: tuple[int, int]) -> bool:
    """Whether no single sentence holds the whole answer."""
    a, b = answer
    return not any(s <= a and b <= e for s, e in spans)


def measure(name: str, split: Splitter, contexts: list[Context], reference: list[Spans]):
    results = [split(c.text) for c in contexts]  # the first pass warms caches up
    t0 = time.perf_counter()
    for c in contexts:
        split(c.text)
    seconds = time.perf_counter() - t0
    answers = sum(len(c.answers) for c in contexts)
    cut = sum(cuts(spans, a) for c, spans in zip(contexts, results, strict=True) for a in c.answers)
    both = mine = theirs = same = 0
    for spans, ref in zip(results, reference, strict=True):
        b, r = boundaries(spans), boundaries(ref)
        both, mine, theirs = both + len(b & r), mine + len(b), theirs + len(r)
        same += spans == ref
    figures = Figures(
        name,
        sum(map(len, results)),
        seconds,
        answers,
        cut,
        both / mine if mine else 1.0,
        both / theirs if theirs else 1.0,
        same / len(contexts),
    )
    return figures, results


def disagreements(contexts, ours: list[Spans], theirs: list[Spans], name: str, n: int, seed=0):
    """Up to `n` boundaries one splitter has and the other lacks, as (who, snippet)."""
    found = []
    for c, a, b in zip(contexts, ours, theirs, strict=True):
        for where, who in [(x, "regex only") for x in boundaries(a) - boundaries(b)] + [
            (x, f"{name} only") for x in boundaries(b) - boundaries(a)
        ]:
            snippet = c.text[max(0, where - 60) : where] + "‖" + c.text[where : where + 40]
            found.append((who, " ".join(snippet.split())))
    random.Random(seed).shuffle(found)
    return found[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="contexts to use (0: all)")
    parser.add_argument("--show", type=int, default=30, help="disagreements to print per library")
    args = parser.parse_args(argv)
    contexts = read_squad(args.data)
    if args.limit:
        contexts = contexts[: args.limit]
    print(f"SQuAD dev: {len(contexts)} contexts, "
          f"{sum(len(c.answers) for c in contexts)} distinct gold answer spans")  # fmt: skip
    found = splitters()
    reference = [regex_split(c.text) for c in contexts]
    header = f"{'splitter':10} {'answers cut':>15} {'bound. P':>9} {'bound. R':>9} {'F1':>6}"
    print(header + f" {'identical':>10} {'sentences':>10} {'sent/s':>10}")
    results = {}
    for name, split in found.items():
        figures, results[name] = measure(name, split, contexts, reference)
        print(
            f"{name:10} {figures.answers_cut:6d} ({figures.answers_cut / figures.answers:6.2%}) {figures.precision:9.3f} "
            f"{figures.recall:9.3f} {figures.f1:6.3f} {figures.identical:10.1%} "
            f"{figures.sentences:10d} {figures.sentences / figures.seconds:10.0f}"
        )
    for name in results:
        if name == "regex" or not args.show:
            continue
        print(f"\n{args.show} disagreements, regex vs {name} (‖ marks the boundary):")
        for who, snippet in disagreements(contexts, reference, results[name], name, args.show):
            print(f"  [{who:13}] {snippet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
