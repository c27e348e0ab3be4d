"""The OpenAI-compatible HTTP API (`qa.api`), used with real clients over loopback.

Fast tests run the API over a small index (fake embedder) with a scripted model, served by
uvicorn on a free loopback port: error shapes, the key rules, documents, search offsets,
citations in responses and streams, and a dropped stream releasing the model. Slow tests
serve the real app (`qa.web.app.serve`: the chat and the API on one port; real embedder and
SmolLM2) and use the official `openai` package, `httpx` and `gradio_client` against it.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
from conftest import CORPUS, FORD_QUESTION

from qa.config import Settings
from qa.engine import Engine
from qa.errors import BadInput
from qa.index.core import Index

openai = pytest.importorskip("openai")

MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
KEY = "test-key-123"
CATS_Q = "How much of the day do cats sleep?"
CATS = "Cats sleep for most of the day."
JOIN_TIMEOUT = 120  # generous: the machine is shared; only that it finishes is asserted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(asgi_app) -> Iterator[str]:
    """`asgi_app` served by uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class ScriptedModel:
    """A generator in the shape of `qa.models.generator.Generator`: it cites the source
    holding `CATS`, word by word; for a question with "forever" in it, it never stops. Like
    the real model, it holds a lock while it generates: a stream left open blocks the next."""

    name = "scripted"
    n_ctx = 4096

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prompts: list[str] = []

    def render(self, messages: Sequence) -> str:
        return "\n".join(f"{m.role}: {m.content}" for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, *, max_tokens: int, **kwargs) -> Iterator[str]:
        with self.lock:
            self.prompts.append(prompt)
            if "forever" in prompt:
                while True:
                    time.sleep(0.005)
                    yield "more "
            n = next(
                (
                    m.group(1)
                    for m in re.finditer(r"^\[(\d+)\] (.*)$", prompt, re.MULTILINE)
                    if CATS in m.group(2)
                ),
                "1",
            )
            yield from re.findall(r"\S+\s*", f"{CATS} [{n}]")


def root_app(api):
    """An ASGI app with the API at /v1, as `serve` mounts it."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/v1", app=api)])


@pytest.fixture
def fake_engine(tmp_path, docs, fake_embedder, settings):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.gguf").write_bytes(b"GGUF")
    engine = Engine(
        settings.with_(model=models / "tiny.gguf"), index=index, generator=ScriptedModel()
    )
    yield engine
    index.close()


@pytest.fixture
def api_url(fake_engine, tmp_path):
    from qa.api.openai import create_app

    api = create_app(fake_engine, upload_dir=tmp_path / "uploads", max_upload_bytes=1000)
    with running(root_app(api)) as url:
        yield url + "/v1"


@pytest.fixture
def keyed_url(fake_engine):
    from qa.api.openai import create_app

    with running(root_app(create_app(fake_engine, api_key=KEY))) as url:
        yield url + "/v1"


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"message", "type", "code"} <= set(error)
    assert error["message"] and "\n" not in error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error


# --- errors --------------------------------------------------------------------------------


def test_bad_requests_are_400_in_the_openai_shape(api_url):
    url = f"{api_url}/chat/completions"
    ask = {"model": "extractive", "messages": [{"role": "user", "content": CATS_Q}]}
    assert_openai_error(httpx.post(url, content=b"{not json"), 400)
    error = assert_openai_error(httpx.post(url, json={"model": "extractive"}), 400)
    assert "messages" in error["message"]
    for bad in (
        {"k": 0},
        {"k": 51},
        {"temperature": 5},
        {"max_tokens": 0},
        {"n": 2},
        {"messages": [{"role": "user", "content": "   "}]},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "tool", "content": "hi"}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    ):
        assert_openai_error(httpx.post(url, json={**ask, **bad}), 400)
    search = f"{api_url}/search"
    assert_openai_error(httpx.post(search, json={"query": ""}), 400)
    assert_openai_error(httpx.post(search, json={"query": "cats", "mode": "magic"}), 400)
    assert_openai_error(httpx.post(search, json={"query": "cats", "k": "many"}), 400)


def test_unknown_model_document_and_path_are_404(api_url):
    for model in ("gpt-4o", "../../etc/passwd", "/etc/passwd", "tiny"):
        r = httpx.post(
            f"{api_url}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": CATS_Q}]},
        )
        assert_openai_error(r, 404, "model_not_found")
    assert_openai_error(httpx.get(f"{api_url}/models/gpt-4o"), 404, "model_not_found")
    assert_openai_error(httpx.get(f"{api_url}/documents/docs/nope.txt"), 404, "document_not_found")
    assert_openai_error(
        httpx.delete(f"{api_url}/documents/..%2F..%2Fetc%2Fpasswd"), 404, "document_not_found"
    )
    r = httpx.post(f"{api_url}/search", json={"query": "cats", "sources": ["nope.txt"]})
    assert_openai_error(r, 404, "document_not_found")
    assert_openai_error(httpx.get(f"{api_url}/no-such-endpoint"), 404)
    assert_openai_error(httpx.put(f"{api_url}/models"), 405)


def test_an_unexpected_failure_is_a_one_line_500_and_the_server_goes_on(
    api_url, fake_engine, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail in a stack frame")

    monkeypatch.setattr(fake_engine, "search", broken)
    with caplog.at_level("ERROR", logger="qa.api"):
        r = httpx.post(f"{api_url}/search", json={"query": "cats"})
    error = assert_openai_error(r, 500, "internal_error")
    assert error["type"] == "server_error" and "secret detail" not in r.text
    assert any("failed" in rec.getMessage() for rec in caplog.records), "the failure is logged"
    monkeypatch.undo()
    assert httpx.post(f"{api_url}/search", json={"query": "cats"}).status_code == 200


def test_openai_client_sees_errors_as_its_own_exceptions(api_url):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 404 and err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="extractive", messages=[{"role": "user", "content": "x"}], temperature=3
        )


# --- the key ---------------------------------------------------------------------------------


def test_a_key_is_required_on_every_call_when_set(keyed_url):
    for method, path in (("GET", "/models"), ("GET", "/documents"), ("POST", "/search"),
                         ("POST", "/chat/completions"), ("GET", "/no-such-endpoint"),
                         ("DELETE", "/documents/docs/cats.txt")):  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                        {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"}):  # fmt: skip
            r = httpx.request(method, keyed_url + path, headers=headers, json={"query": "cats"})
            assert_openai_error(r, 401, "invalid_api_key")
            assert r.headers["www-authenticate"] == "Bearer"
    ok = httpx.get(f"{keyed_url}/documents", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and "docs/cats.txt" in ok.text  # nothing was deleted
    client = openai.OpenAI(base_url=keyed_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    client = openai.OpenAI(base_url=keyed_url, api_key=KEY, max_retries=0)
    assert "extractive" in [m.id for m in client.models.list()]


def test_keys_and_exposure_rules():
    from qa.api.auth import check_api_exposure

    for host in ("127.0.0.1", "localhost", "::1"):
        assert check_api_exposure(host, None, settings=Settings()) is None
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(BadInput, match="--api-key"):
            check_api_exposure(host, None, settings=Settings())
        assert check_api_exposure(host, None, insecure=True, settings=Settings()) is None
        assert check_api_exposure(host, "k3y", settings=Settings()) == "k3y"
        assert check_api_exposure(host, None, settings=Settings(api_key="env")) == "env"
    for bad in ("two words", "tab\tkey", "ключ", "nl\n"):
        with pytest.raises(BadInput, match="API key"):
            check_api_exposure("127.0.0.1", bad)
        with pytest.raises(BadInput, match="QA_API_KEY"):
            Settings(api_key=bad)
    assert "s3cret" not in repr(Settings(api_key="s3cret"))


def test_qa_api_key_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("QA_API_KEY", "from-env")
    assert Settings.load().api_key == "from-env"
    monkeypatch.setenv("QA_API_KEY", "has space")
    with pytest.raises(BadInput, match="QA_API_KEY"):
        Settings.load()


def test_serve_refuses_a_keyless_api_off_loopback_before_starting(tmp_path):
    from qa.web.app import serve

    with pytest.raises(BadInput, match="--api-key"):
        serve(host="0.0.0.0", port=free_port(), auth="ann:pw", index_dir=tmp_path / "index")
    with pytest.raises(BadInput, match="--auth"):  # the chat's rule still comes first
        serve(host="0.0.0.0", port=free_port(), api_key="k", index_dir=tmp_path / "index")
    assert not (tmp_path / "index").exists()


# --- documents and search ------------------------------------------------------------------


def test_search_offsets_slice_the_document_text_exactly(api_url, fake_engine):
    r = httpx.post(f"{api_url}/search", json={"query": "volcano Sicily", "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["data"]
    assert hits and {"source", "start", "end", "page", "text", "score"} <= set(hits[0])
    for h in hits:
        text = httpx.get(f"{api_url}/documents/{h['source']}").json()["text"]
        assert text[h["start"] : h["end"]] == h["text"]
        assert fake_engine.document_text(h["source"]) == text
    only = httpx.post(
        f"{api_url}/search", json={"query": "volcano", "sources": ["docs/cats.txt"], "mode": "bm25"}
    ).json()["data"]
    assert all(h["source"] == "docs/cats.txt" for h in only)


def test_documents_list_upload_and_delete(api_url, tmp_path):
    docs = httpx.get(f"{api_url}/documents").json()["data"]
    assert {d["source"] for d in docs} == {
        "docs/cats.txt",
        "docs/rivers.md",
        "docs/sub/volcano.txt",
    }
    assert all(d["chunks"] >= 1 for d in docs)

    files = [("file", ("../../evil name?.txt", b"Owls hunt at night. Barn owls nest in barns."))]
    r = httpx.post(f"{api_url}/documents", files=files)
    assert r.status_code == 200, r.text
    (result,) = r.json()["data"]
    assert result["outcome"] == "indexed" and result["name"] == "evil name_.txt"
    assert result["source"] == "uploads/evil name_.txt"
    uploads = tmp_path / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["evil name_.txt"]
    assert not (tmp_path.parent / "evil name?.txt").exists()
    hit = httpx.post(f"{api_url}/search", json={"query": "owls hunt", "k": 1}).json()["data"][0]
    assert hit["source"] == "uploads/evil name_.txt"

    # over the cap (1000 bytes in this fixture): 413, nothing indexed or kept
    big = [("file", ("big.txt", b"x" * 1500)), ("file", ("ok.txt", b"Small file."))]
    error = assert_openai_error(
        httpx.post(f"{api_url}/documents", files=big), 413, "file_too_large"
    )
    assert "big.txt" in error["message"] and "MB" in error["message"]
    assert sorted(p.name for p in uploads.iterdir()) == ["evil name_.txt"]
    huge = httpx.post(
        f"{api_url}/documents",
        content=b"x" * 100_000_000,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_openai_error(huge, 413, "file_too_large")

    # an unsupported type or no file at all: 400
    assert_openai_error(httpx.post(f"{api_url}/documents", files=[("file", ("x.exe", b"MZ"))]), 400)
    assert_openai_error(httpx.post(f"{api_url}/documents", json={"file": "x"}), 400)

    r = httpx.delete(f"{api_url}/documents/uploads/evil name_.txt")
    assert r.status_code == 200 and r.json()["deleted"] == ["uploads/evil name_.txt"]
    assert not any(uploads.iterdir())
    assert_openai_error(httpx.delete(f"{api_url}/documents/uploads/evil name_.txt"), 404)
    assert "uploads/" not in httpx.get(f"{api_url}/documents").text


# --- answers through the openai client (scripted model) ---------------------------------------


def test_models_lists_the_extractive_reader_and_the_ggufs(api_url):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    models = {m.id: m for m in client.models.list()}
    assert list(models)[:2] == ["extractive", "tiny.gguf"]  # then the project's models/
    assert models["extractive"].mode == "extractive" and models["extractive"].default is True
    assert models["tiny.gguf"].mode == "llm"
    assert client.models.retrieve("tiny.gguf").id == "tiny.gguf"


def test_a_completion_carries_its_citations_twice(api_url, fake_engine):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    for model in ("extractive", "tiny.gguf"):
        r = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": CATS_Q}],
            max_tokens=50,
            extra_body={"k": 3},
        )
        m = r.choices[0].message
        assert r.model == model and m.refused is False and m.refusal is None
        assert "[1]" in m.content and m.citations
        for c in m.citations:
            assert f"[{c['n']}]" in m.content
            assert fake_engine.document_text(c["source"])[c["start"] : c["end"]] == c["quote"]
        assert CATS in m.citations[0]["quote"]
        assert m.mode == ("extractive" if model == "extractive" else "llm")


def test_a_refusal_is_a_normal_flagged_response(api_url):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    r = client.chat.completions.create(
        model="extractive",
        messages=[{"role": "user", "content": "What is the airspeed of an unladen swallow?"}],
    )
    m = r.choices[0].message
    assert m.refused is True and m.citations == [] and m.content == m.refusal
    assert r.choices[0].finish_reason == "stop"


def test_a_stream_sends_drafts_then_the_checked_answer_and_citations_last(api_url):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="tiny.gguf", messages=[{"role": "user", "content": CATS_Q}], stream=True
        )
    )
    assert len(chunks) >= 5
    drafts = "".join(getattr(c.choices[0].delta, "draft", None) or "" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert drafts.startswith("Cats sleep") and content.startswith(CATS[:-1]) and "[1]" in content
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop" and last.delta.refused is False
    assert [c["n"] for c in last.delta.citations] == [1]
    assert all(getattr(c.choices[0].delta, "citations", None) is None for c in chunks[:-1])
    # on the wire: server-sent events ending with [DONE]
    with httpx.stream(
        "POST",
        f"{api_url}/chat/completions",
        json={
            "model": "extractive",
            "stream": True,
            "messages": [{"role": "user", "content": CATS_Q}],
        },
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    assert json.loads(events[-2][6:])["choices"][0]["delta"]["citations"]


def test_history_becomes_the_follow_up_context(api_url, fake_engine):
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    r = client.chat.completions.create(
        model="extractive",
        messages=[
            {"role": "system", "content": "Ignore the documents."},  # ignored
            {"role": "user", "content": "Where is Mount Etna?"},
            {"role": "assistant", "content": "Mount Etna is an active volcano on Sicily [1]."},
            {"role": "user", "content": [{"type": "text", "text": "Does it erupt often?"}]},
        ],
    )
    m = r.choices[0].message
    assert m.query != "Does it erupt often?" and "Etna" in m.query, m.query
    assert not m.refused and "erupts often" in m.citations[0]["quote"]


def test_a_dropped_stream_releases_the_model(api_url):
    body = {
        "model": "tiny.gguf",
        "stream": True,
        "messages": [{"role": "user", "content": f"{CATS_Q} Keep going forever"}],
    }
    with httpx.stream("POST", f"{api_url}/chat/completions", json=body) as r:
        lines = r.iter_lines()
        drafts = 0
        for line in lines:
            if '"draft"' in line:
                drafts += 1
                if drafts == 5:
                    break  # then the connection is closed mid-stream
    done: list = []

    def next_request() -> None:
        client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
        done.append(
            client.chat.completions.create(
                model="tiny.gguf", messages=[{"role": "user", "content": CATS_Q}]
            )
        )

    t = threading.Thread(target=next_request, daemon=True)
    t.start()
    t.join(JOIN_TIMEOUT)
    assert done and done[0].choices[0].message.citations, "the model was released"


# --- the real app: chat and API on one port -------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app (real embedder, real default model), with a chat login and an API key."""
    from qa.web.app import serve

    root = tmp_path_factory.mktemp("api-app")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.load(index_dir=root / "index")
    Index.build([root / "corpus"], root / "index", settings=settings).close()
    port = free_port()
    app = serve(
        port=port,
        settings=settings,
        auth="ann:s3cret",
        api_key=KEY,
        block=False,
        warm=True,
        quiet=True,
    )
    yield app, f"http://127.0.0.1:{port}"
    app.close()
    app.qa.engine.close()


def real_client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served[1]}/v1", api_key=KEY, max_retries=0, timeout=600)


def check_citations(url: str, message) -> None:
    assert message.citations, message
    for c in message.citations:
        assert f"[{c['n']}]" in message.content
        doc = httpx.get(
            f"{url}/v1/documents/{c['source']}", headers={"Authorization": f"Bearer {KEY}"}
        ).json()
        assert doc["text"][c["start"] : c["end"]] == c["quote"]


@pytest.mark.slow
def test_real_models_and_completions_with_citations(served):
    client = real_client(served)
    assert [m.id for m in client.models.list()][:1] == ["extractive"]
    assert MODEL in [m.id for m in client.models.list()]
    for model in ("extractive", MODEL):
        r = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": FORD_QUESTION}], temperature=0
        )
        m = r.choices[0].message
        assert m.refused is False, m
        check_citations(served[1], m)
        assert any("completely false" in c["quote"] for c in m.citations)
        assert m.citations[0]["source"] == "corpus/ford-xiaomi-joint-venture.txt"


@pytest.mark.slow
def test_real_stream_follow_up_and_error(served):
    client = real_client(served)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": FORD_QUESTION}], stream=True
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1].choices[0].delta
    assert last.citations and "[1]" in content and last.refused is False
    assert sum(1 for c in chunks if getattr(c.choices[0].delta, "draft", None)) >= 3

    first = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": FORD_QUESTION}]
    )
    follow = client.chat.completions.create(
        model="extractive",
        messages=[
            {"role": "user", "content": FORD_QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "And did Xiaomi deny it too?"},
        ],
    )
    m = follow.choices[0].message
    assert m.query != "And did Xiaomi deny it too?" and "deny" in m.query.lower(), m.query
    check_citations(served[1], m)

    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.body["code"] == "model_not_found"


@pytest.mark.slow
def test_real_search_offsets_over_httpx(served):
    url = served[1]
    headers = {"Authorization": f"Bearer {KEY}"}
    hits = httpx.post(f"{url}/v1/search", json={"query": FORD_QUESTION, "k": 3}, headers=headers)
    assert hits.status_code == 200
    for h in hits.json()["data"]:
        text = httpx.get(f"{url}/v1/documents/{h['source']}", headers=headers).json()["text"]
        assert text[h["start"] : h["end"]] == h["text"]


@pytest.mark.slow
def test_the_chat_login_does_not_open_the_api_nor_the_key_the_chat(served):
    from gradio_client import Client

    url = served[1]
    with httpx.Client(base_url=url) as browser:  # logged in to the chat
        login = browser.post("/login", data={"username": "ann", "password": "s3cret"})
        assert login.status_code == 200, login.text
        assert browser.get("/config").status_code == 200
        assert_openai_error(browser.get("/v1/models"), 401, "invalid_api_key")
        assert_openai_error(browser.get("/v1/models", auth=("ann", "s3cret")), 401)
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{url}/config", headers=bearer).status_code == 401
    with pytest.raises(Exception):  # noqa: B017 (the client's error type varies)
        Client(f"{url}/", headers=bearer, verbose=False)
    assert httpx.get(f"{url}/v1/models", headers=bearer).status_code == 200


@pytest.mark.slow
def test_eight_api_clients_and_the_chat_at_once(served):
    from gradio_client import Client

    url = served[1]
    results: dict[str, object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(10)

    def api_client(i: int) -> None:
        try:
            client = real_client(served)
            start.wait(timeout=300)
            model = MODEL if i % 2 else "extractive"
            q = f"{FORD_QUESTION} (ref {i})"
            if i % 4 == 3:  # a stream
                chunks = list(
                    client.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": q}], stream=True
                    )
                )
                results[f"api{i}"] = chunks[-1].choices[0].delta
            else:
                r = client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": q}]
                )
                results[f"api{i}"] = r.choices[0].message
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def chat_client(i: int) -> None:
        try:
            c = Client(f"{url}/", auth=("ann", "s3cret"), verbose=False, download_files=False)
            start.wait(timeout=300)
            mode = "Model" if i else "Extractive"
            chat = c.submit(f"{FORD_QUESTION} (chat {i})", 5, mode, MODEL, 0.0, api_name="/ask")
            results[f"chat{i}"] = chat.result(timeout=600)[1]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=api_client, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=chat_client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    assert not errors, errors[0]
    assert sorted(results) == sorted([f"api{i}" for i in range(8)] + ["chat0", "chat1"])
    for i in range(8):
        m = results[f"api{i}"]
        assert m.refused is False and m.citations, (i, m)
    for i in range(2):
        chat = results[f"chat{i}"]
        assert f"(chat {i})" in chat and 'data-status="answered"' in chat, chat


@pytest.mark.slow
def test_a_dropped_real_stream_releases_the_model(served):
    url = served[1]
    body = {
        "model": MODEL,
        "stream": True,
        "max_tokens": 150,
        "messages": [{"role": "user", "content": "Describe everything about Ford and Xiaomi."}],
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=600
    ) as r:
        for line in r.iter_lines():
            if '"draft"' in line:
                break  # the first token arrived: drop the connection
    done: list = []

    def next_request() -> None:
        r = real_client(served).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": FORD_QUESTION}]
        )
        done.append(r)

    t = threading.Thread(target=next_request, daemon=True)
    t.start()
    t.join(JOIN_TIMEOUT * 5)
    assert done and done[0].choices[0].message.citations


def test_a_follow_up_of_a_follow_up_keeps_the_context_of_the_first_question():
    """Each earlier turn is rewritten against the turns before it, so the third question
    still knows what the first one was about."""
    from types import SimpleNamespace

    from qa.answer.followup import rewrite
    from qa.api.openai import _history

    def msg(role, text):
        return SimpleNamespace(role=role, text=lambda: text)

    turns = _history(
        [
            msg("user", "Did Ford deny the Xiaomi report?"),
            msg("assistant", "Yes [1]."),
            msg("user", "And did Xiaomi deny it too?"),
            msg("assistant", "Yes [1]."),
        ]
    )
    assert "report" in turns[1].standalone.lower()
    assert "report" in rewrite("When did they deny it?", turns).lower()
