"""The prompt: instructions, a worked example, and the numbered evidence, fitted to the context.

Small models answer far better from a few short, focused sources than from whole passages, so
by default each source is one evidence sentence (chosen by
`qa.answer.evidence.rank_evidence`); with `style="passages"` each source is a whole retrieved
passage instead. Sources are added whole,
best first, while the rendered prompt (counted with the model's own tokenizer) leaves room for
the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.answer.evidence import Sentence
from qa.models.generator import Generator, Message

REFUSAL = "The documents don't say."
SYSTEM = (
    "You answer questions using only the numbered sources. Answer in one short sentence and "
    "end it with the number of the source you used in brackets, like [1]. If the sources do "
    f'not answer the question, write: "{REFUSAL}"'
)
# Worked examples shown to the model as earlier turns (invented text, not from any corpus).
EXAMPLES = (
    (
        (
            "The Eiffel Tower was completed in 1889 as the entrance to the World's Fair.",
            "Paris is the capital and largest city of France.",
        ),
        "When was the Eiffel Tower completed?",
        "The Eiffel Tower was completed in 1889 [1].",
    ),
    (
        (
            "The town library opens at nine in the morning.",
            "The library is open from Monday to Saturday and closed on Sundays.",
        ),
        "Is the library open on Sundays?",
        "No, the library is closed on Sundays [2].",
    ),
)
MAX_SOURCES = 4  # evidence sentences given to the model (style="sentences")
MAX_PASSAGES = 3  # passages given to the model (style="passages")
STOP = ("\n\n", "Question:", "Sources:", "<|im_end|>")


@dataclass(frozen=True)
class Source:
    """One numbered source in the prompt: a sentence, or the sentences of a passage."""

    n: int
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclass(frozen=True)
class Prompt:
    messages: tuple[Message, ...]
    text: str  # rendered with the model's chat template
    sources: tuple[Source, ...]
    tokens: int


_BRACKETED_NUMBER = re.compile(r"\[\s*\d+(?:\s*[,;-]\s*\d+)*\s*\]")


def _clean(text: str) -> str:
    """One line; bracketed numbers in a document ("[3]") are dropped so that only the
    prompt's own numbering looks like a source marker."""
    return " ".join(_BRACKETED_NUMBER.sub(" ", text).split())


def user_message(question: str, sources: Sequence[str]) -> str:
    numbered = "\n".join(f"[{i}] {_clean(s)}" for i, s in enumerate(sources, 1))
    return f"Sources:\n{numbered}\n\nQuestion: {question.strip()}"


def messages_for(question: str, sources: Sequence[str], examples: bool = True) -> list[Message]:
    out = [Message("system", SYSTEM)]
    if examples:
        for texts, q, a in EXAMPLES:
            out += [Message("user", user_message(q, texts)), Message("assistant", a)]
    out.append(Message("user", user_message(question, sources)))
    return out


def group_sources(
    ranked: Sequence[Sentence], style: str = "sentences", limit: int | None = None
) -> list[Source]:
    """Candidate sources, best first: single sentences, or whole passages (sentences in
    document order, passages ordered by their best sentence)."""
    if style == "sentences":
        chosen = list(ranked[: limit or MAX_SOURCES])
        return [Source(i, (s,)) for i, s in enumerate(chosen, 1)]
    if style != "passages":
        raise ValueError(f"unknown prompt style {style!r}")
    by_chunk: dict[object, list[Sentence]] = {}
    for s in ranked:
        by_chunk.setdefault((s.source, s.chunk_id), []).append(s)
    groups = list(by_chunk.values())[: limit or MAX_PASSAGES]
    return [Source(i, tuple(sorted(g, key=lambda s: s.start))) for i, g in enumerate(groups, 1)]


def build(
    question: str,
    candidates: Sequence[Source],
    generator: Generator,
    answer_tokens: int,
    examples: bool = True,
    best_last: bool = False,
) -> Prompt:
    """The prompt with as many whole sources (best first) as fit beside `answer_tokens`;
    with `best_last`, they are numbered in reverse so the best is nearest the question."""
    budget = generator.n_ctx - answer_tokens
    chosen: list[Source] = []
    best: Prompt | None = None
    for src in candidates:
        trial = [*chosen, src]
        if best_last:
            trial = [Source(i, s.sentences) for i, s in enumerate(reversed(trial), 1)]
            trial.reverse()  # kept best first; numbers run from the worst
        else:
            trial = [Source(i, s.sentences) for i, s in enumerate(trial, 1)]
        ordered = sorted(trial, key=lambda s: s.n)
        msgs = messages_for(question, [s.text for s in ordered], examples)
        text = generator.render(msgs)
        tokens = generator.count_tokens(text)
        if tokens > budget:
            continue  # a source too long to fit; a shorter later one may still fit
        chosen = trial
        best = Prompt(tuple(msgs), text, tuple(ordered), tokens)
    if best is None:
        msgs = messages_for(question, [], examples)
        text = generator.render(msgs)
        best = Prompt(tuple(msgs), text, (), generator.count_tokens(text))
    return best


def answer_grammar(n_sources: int) -> str:
    """GBNF for "One sentence [n]." with n a source number, or the refusal sentence."""
    numbers = " | ".join(f'"{i}"' for i in range(1, max(n_sources, 1) + 1))
    return (
        f"root ::= refusal | sentence\n"
        f'refusal ::= "{REFUSAL}"\n'
        f'sentence ::= [A-Za-z0-9] [^\\[\\]\\n]{{2,300}} " [" ({numbers}) "]."\n'
    )
