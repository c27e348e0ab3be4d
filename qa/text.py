"""English words, stopwords and stems: the one place that says which words of a text count.

Everything that compares texts word by word uses these: BM25 queries (`qa.index.store`),
evidence ranking and support scoring (`qa.answer.evidence`), citation checks
(`qa.answer.verify`) and follow-up rewriting (`qa.answer.followup`). One list and one
stemmer, so that "the question's terms" mean the same thing at every step.

- `STOPWORDS`: the Snowball project's English stop word list (the list NLTK's `stopwords`
  corpus is derived from; https://snowballstem.org/algorithms/english/stop.txt), copied
  here because no light package ships it (NLTK downloads it at run time; the `stop-words`
  package's English list has 1,333 entries, content words such as "computer", "year" and
  "information" among them), plus `QUESTION_WORDS`.
- `stem`: the original Porter algorithm (`snowballstemmer`'s "porter"), the algorithm of the
  FTS5 `porter` tokenizer the BM25 index uses, so a term means the same word family to both.
- `words`, `terms`: the words of a text, and its content-word stems.
"""

from __future__ import annotations

import functools
import re
import threading

import snowballstemmer

# Snowball's English stop word list, verbatim (174 words; their comment on each group aside).
SNOWBALL_ENGLISH = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing
    would should could ought i'm you're he's she's it's we're they're i've you've we've they've
    i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll isn't aren't wasn't
    weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't shan't shouldn't can't
    cannot couldn't mustn't let's that's who's what's here's there's when's where's why's how's
    a an the and but if or because as until while of at by for with about against between into
    through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very""".split()
)
# Words a question asks WITH rather than about ("What is the name of...", "Tell me what X
# said", "according to", "What kind of..."), and the modals Snowball leaves out for their
# homonyms (a will, a can), which in a question are verbs. They were the project's own
# additions before this list was shared; dropping them lowers every question's lexical
# coverage of its answer sentence by a word that answer sentences rarely contain.
QUESTION_WORDS = frozenset(
    """will can whose just let yes also however say says said tell told according many much one
    ones two whats name named called kind type sort way thing things get got make made use
    used""".split()
)
STOPWORDS = SNOWBALL_ENGLISH | QUESTION_WORDS

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_PORTER = snowballstemmer.stemmer("porter")
# A snowballstemmer stemmer keeps the word it is working on in the object: one call at a time.
_PORTER_LOCK = threading.Lock()


def words(text: str) -> list[str]:
    """The words of `text`, as written: letters and digits, with inner apostrophes kept
    ("don't", "Ford's"), underscores and punctuation not."""
    return [m.group(0) for m in _WORD.finditer(text)]


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of `word`, lowercased, a possessive "'s" dropped first
    ("Ford's" -> "ford"; "deny", "denied", "denies" -> "deni"). Cached: the same few
    thousand words are stemmed again and again while support is scored."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    with _PORTER_LOCK:
        return _PORTER.stemWord(w)


def terms(text: str) -> list[str]:
    """Content-word stems of `text`, in order, without stopwords (single letters dropped,
    single digits kept)."""
    out = []
    for w in words(text):
        lw = w.lower().replace("’", "'")
        if lw in STOPWORDS or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.append(stem(lw))
    return out
