"""Loaders for the evaluation data sets in `../shared/eval-data/` (read in place, never copied).

Every data set becomes one `Dataset`: the passages to index, and questions whose gold
evidence is either a set of character spans inside passages (SQuAD answers, CLAPnq gold
sentences) or a set of whole relevant passages (SciFact cited abstracts).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import random
import re
import tokenize
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from qa.config import PROJECT_ROOT
from qa.errors import BadInput

NAMES = ("squad", "clapnq", "scifact")
# How a retrieved chunk counts as relevant:
#   "contains": the chunk is from the gold passage and contains a whole gold span
#   "overlaps": the chunk is from the gold passage and overlaps a gold span
#   "passage":  the chunk is from a relevant passage (metrics then rank passages, not chunks)
MATCHES = ("contains", "overlaps", "passage")


@dataclass(frozen=True)
class Passage:
    pid: str
    title: str
    text: str


@dataclass(frozen=True)
class Span:
    pid: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    relevant: tuple[str, ...]  # ids of the passages that hold the evidence
    spans: tuple[Span, ...] = ()  # gold evidence inside those passages
    answers: tuple[str, ...] = ()  # reference answer texts (SQuAD: the gold spans' texts)
    # passages that come with the question without answering it (a CLAPnq unanswerable
    # question's same-topic passage): kept in the index when the corpus is cut
    context: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)


@dataclass(frozen=True)
class Dataset:
    name: str
    passages: tuple[Passage, ...]
    questions: tuple[Question, ...]
    match: str  # one of MATCHES

    def sample(self, limit: int | None, seed: int = 0, max_passages: int | None = None) -> Dataset:
        """`limit` questions drawn at random (with `seed`), in data set order; a data set with
        answerable and unanswerable questions gives both kinds in proportion (CLAPnq: half
        each). With `max_passages`, the corpus is cut to the passages those questions need
        (and come with) plus random others, up to that many."""
        rng = random.Random(seed)
        questions = list(self.questions)
        if limit is not None and limit < len(questions):
            yes = [i for i, q in enumerate(questions) if q.answerable]
            no = [i for i, q in enumerate(questions) if not q.answerable]
            if yes and no:
                n_yes = min(max(round(limit * len(yes) / len(questions)), 1), len(yes), limit)
                n_no = min(limit - n_yes, len(no))
                picked = rng.sample(yes, n_yes) + rng.sample(no, n_no)
            else:
                picked = rng.sample(range(len(questions)), limit)
            questions = [questions[i] for i in sorted(picked)]
        passages = self.passages
        if max_passages is not None and max_passages < len(passages):
            needed = {pid for q in questions for pid in q.relevant + q.context}
            others = [p.pid for p in passages if p.pid not in needed]
            extra = max(0, max_passages - len(needed))
            keep = needed | set(rng.sample(others, min(extra, len(others))))
            passages = tuple(p for p in passages if p.pid in keep)
        return replace(self, passages=tuple(passages), questions=tuple(questions))


def default_data_dir() -> Path:
    """`../shared/eval-data` beside the project checkout, else `shared/eval-data` here."""
    for candidate in (PROJECT_ROOT.parent / "shared" / "eval-data", Path("shared/eval-data")):
        if candidate.is_dir():
            return candidate
    return PROJECT_ROOT.parent / "shared" / "eval-data"


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a data set by name: squad, clapnq or scifact."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    loaders = {"squad": load_squad, "clapnq": load_clapnq, "scifact": load_scifact}
    if name not in loaders:
        raise BadInput(f"unknown data set {name!r}: use one of {', '.join(NAMES)}")
    if not root.is_dir():
        raise BadInput(
            f"no evaluation data folder at {root}: pass --data DIR (see shared/eval-data/README.md)"
        )
    return loaders[name](root)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise BadInput(f"evaluation data not found: {path} (see shared/eval-data/README.md)")
    return path


# ----------------------------------------------------------------------------- SQuAD


def load_squad(root: Path) -> Dataset:
    """SQuAD v1.1 dev: one passage per paragraph; gold spans are the answers' spans."""
    path = _need(Path(root) / "squad" / "dev-v1.1.json.zip")
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".json"))
        data = json.loads(zf.read(name).decode("utf-8"))
    passages: list[Passage] = []
    questions: list[Question] = []
    for article in data["data"]:
        title = article["title"].replace("_", " ")
        for paragraph in article["paragraphs"]:
            pid = f"p{len(passages)}"
            context = paragraph["context"]
            passages.append(Passage(pid, title, context))
            for qa in paragraph["qas"]:
                spans = tuple(
                    dict.fromkeys(
                        Span(pid, a["answer_start"], a["answer_start"] + len(a["text"]))
                        for a in qa["answers"]
                    )
                )
                answers = tuple(a["text"] for a in qa["answers"])
                questions.append(Question(qa["id"], qa["question"], (pid,), spans, answers))
    return Dataset("squad", tuple(passages), tuple(questions), "contains")


# ----------------------------------------------------------------------------- CLAPnq


def load_clapnq(root: Path) -> Dataset:
    """CLAPnq dev: every passage of both files is indexed (an unanswerable question comes with
    a passage on its topic, so it is asked against an index that holds that passage); the
    questions are the 300 answerable ones, then the 300 unanswerable ones (no gold evidence:
    `relevant` is empty, their own passage is `context`). Gold spans are an answer's selected
    sentences, located in the passage text."""
    folder = Path(root) / "clapnq"
    rows = {}
    for kind in ("answerable", "unanswerable"):
        path = _need(folder / f"clapnq_dev_{kind}.jsonl")
        with path.open(encoding="utf-8") as f:
            rows[kind] = [json.loads(line) for line in f if line.strip()]
    pids: dict[tuple[str, str], str] = {}
    passages: list[Passage] = []
    for row in rows["answerable"] + rows["unanswerable"]:
        for p in row["passages"]:
            key = (p["title"], p["text"])
            if key not in pids:
                pids[key] = f"c{len(passages)}"
                passages.append(Passage(pids[key], p["title"], p["text"]))
    questions = []
    for kind in ("answerable", "unanswerable"):
        questions += [_clapnq_question(row, pids, kind == "unanswerable") for row in rows[kind]]
    return Dataset("clapnq", tuple(passages), tuple(questions), "overlaps")


def _clapnq_question(row: dict, pids: dict[tuple[str, str], str], unanswerable: bool) -> Question:
    p = row["passages"][0]
    pid = pids[(p["title"], p["text"])]
    spans: list[Span] = []
    answers: list[str] = []
    for out in [] if unanswerable else row.get("output", []):
        if out.get("answer"):
            answers.append(out["answer"])
        for sentence in out.get("selected_sentences", []):
            start = p["text"].find(sentence)
            if start >= 0:
                spans.append(Span(pid, start, start + len(sentence)))
    return Question(
        str(row["id"]),
        row["input"],
        () if unanswerable else (pid,),
        tuple(dict.fromkeys(spans)),
        tuple(answers),
        context=(pid,),
    )


# ----------------------------------------------------------------------------- SciFact


def parse_sentence_list(value: str) -> list[str]:
    """The corpus stores an abstract as a printed numpy array of strings, e.g.
    "['First.'\\n 'Second.']" (no commas): read each string literal in turn."""
    out = []
    tokens = tokenize.generate_tokens(io.StringIO(value).readline)
    try:
        for tok in tokens:
            if tok.type == tokenize.STRING:
                out.append(ast.literal_eval(tok.string))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return out


def load_scifact(root: Path) -> Dataset:
    """SciFact: 5,183 abstracts (title, a blank line, the sentences); the 300 validation
    claims (the BEIR SciFact test queries) with their cited documents as relevant."""
    path = _need(Path(root) / "scifact" / "scifact.zip")
    with zipfile.ZipFile(path) as zf:
        corpus = _csv_rows(zf, "corpus_train.csv")
        claims = _csv_rows(zf, "claims_validation.csv")
    passages = tuple(
        Passage(
            row["doc_id"],
            " ".join(row["title"].split()),
            " ".join(row["title"].split())
            + "\n\n"
            + " ".join(parse_sentence_list(row["abstract"])),
        )
        for row in corpus
    )
    texts: dict[str, str] = {}
    relevant: dict[str, dict[str, None]] = {}
    for row in claims:
        texts.setdefault(row["id"], row["claim"])
        cited = relevant.setdefault(row["id"], {})
        cited.update(dict.fromkeys(re.findall(r"\d+", row["cited_doc_ids"])))
    questions = tuple(
        Question(qid, texts[qid], tuple(relevant[qid])) for qid in texts if relevant[qid]
    )
    return Dataset("scifact", passages, questions, "passage")


def _csv_rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 24)
    with zf.open(name) as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
