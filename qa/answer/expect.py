"""What a question's answer must contain, checked against the chosen evidence.

A question asking "how many" is answered by a sentence that states a quantity: of the 642
"how many" questions of SQuAD dev (all articles, when this rule was made), 99.7% have one in
their gold sentence (a digit or a number word: the two misses were "All missions" and a
question that only quoted "how many"). A best sentence with no quantity cannot answer such a
question, so the answer is declined rather than quoting it: "How many Xiaomi cars has Ford
sold?" over an article that gives no sales figure.
"""

from __future__ import annotations

import re

_QUANTITY_QUESTION = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred hundreds thousand thousands million millions billion billions "
    "trillion trillions dozen dozens once twice thrice half several couple both single none "
    "multiple numerous few"
).split()
_QUANTITY = re.compile(r"\d|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def wants_quantity(question: str) -> bool:
    """Whether the question asks how many."""
    return bool(_QUANTITY_QUESTION.search(question))


def has_quantity(text: str) -> bool:
    """Whether `text` states a quantity (a digit or a number word)."""
    return bool(_QUANTITY.search(text))


def can_answer(question: str, sentence: str) -> bool:
    """False when `sentence` lacks what every answer to `question` holds (see the module)."""
    return not wants_quantity(question) or has_quantity(sentence)
