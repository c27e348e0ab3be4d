"""The API's request bodies (pydantic) and the JSON its responses carry.

Requests follow OpenAI's chat-completions body; fields qa does not use (`top_p`, `user`,
`stream_options`, ...) are accepted and ignored, so existing clients work unchanged.
Responses are built from the engine's records: an `Answer` becomes `message.content` (with
its `[n]` markers) plus `message.citations` (`n, source, start, end, page, locator, quote`) and
`message.refused`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.config import K_MAX, MAX_TEMPERATURE
from qa.records import Answer, Hit

EXTRACTIVE = "extractive"  # the model id of the extractive reader (no language model)
SEARCH_MODES = Literal["hybrid", "dense", "bm25"]


class TextPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`. `k` (passages retrieved) is qa's own extension."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=MAX_TEMPERATURE)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    k: int | None = Field(default=None, ge=1, le=K_MAX)
    n: int = Field(default=1, ge=1, le=1)  # one answer per request


class SearchRequest(BaseModel):
    """`POST /v1/search`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    k: int | None = Field(default=None, ge=1, le=K_MAX)
    sources: list[str] | None = None
    mode: SEARCH_MODES = "hybrid"


def citations_of(answer: Answer) -> list[dict[str, Any]]:
    """`[{n, source, start, end, page, locator, quote}]`: `document_text(source)[start:end] == quote`."""
    return [c.to_dict() for c in answer.citations]


def answer_fields(answer: Answer) -> dict[str, Any]:
    """The structured part of an answer, beside its text: citations, the refusal flag, the
    query it was searched as, its mode, and the reader's short answer when there is one."""
    fields: dict[str, Any] = {
        "citations": citations_of(answer),
        "refused": answer.refused,
        "query": answer.query,
        "mode": answer.mode,
    }
    if answer.short is not None:  # {text, kind, source, start, end, citation, score}
        fields["short"] = answer.short.to_dict()
    return fields


def hit_dict(hit: Hit) -> dict[str, Any]:
    """A search hit: `document_text(source)[start:end] == text`."""
    return hit.to_dict()


def timings_of(answer: Answer) -> dict[str, float]:
    return {k: round(v, 4) for k, v in answer.timings.items()}
