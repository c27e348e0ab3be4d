"""The browser chat's logic, rendering and escaping (fast, with fakes), and the app itself
launched in-process on a free port and used over loopback with `gradio_client` (slow, with
the real embedder and the real default model)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CORPUS, FORD_QUESTION
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.config import Settings
from qa.engine import Engine
from qa.errors import BadInput
from qa.index.core import Index
from qa.records import Answer, Citation, Hit
from qa.web.app import ChatApp, check_exposure, is_loopback, parse_auth
from qa.web.files import MAX_NAME, safe_filename, stage_uploads
from qa.web.render import (
    ANSWERED,
    FAILED,
    REFUSED,
    STOPPED,
    ChatTurn,
    SourceView,
    answer_html,
    copy_text,
    documents_html,
    report_html,
    source_views,
    sources_html,
    transcript_html,
)

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> & "q" \'a\''

# Markup the renderer itself writes; anything else in the output came from the content.
ALLOWED_TAGS = {
    "div", "span", "a", "button", "details", "summary", "mark", "section", "table", "thead",
    "tbody", "tr", "th", "td", "p", "b", "code",
}  # fmt: skip


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def parse(html_text: str) -> _Collect:
    p = _Collect()
    p.feed(html_text)
    p.close()
    return p


def assert_only_our_markup(html_text: str) -> None:
    for tag, attrs in parse(html_text).tags:
        assert tag in ALLOWED_TAGS, (tag, html_text)
        for name, value in attrs:
            assert not name.startswith("on"), (name, html_text)
            if name == "href":
                assert value.startswith("#qa-src-"), value


# --- rendering and escaping ------------------------------------------------------------


def test_answer_markers_become_footnote_links_and_text_is_escaped():
    out = answer_html("Ford said <b>no</b> [1] and [2], not [7].", 3, [1, 2])
    assert out.count('class="qa-cite"') == 2
    assert 'href="#qa-src-3-1"' in out and 'data-target="qa-src-3-2"' in out
    assert "&lt;b&gt;no&lt;/b&gt;" in out and "<b>" not in out
    assert "[7]" in out and "qa-src-3-7" not in out  # no citation 7: left as text
    assert "".join(parse(out).text) == "Ford said <b>no</b> [1] and [2], not [7]."


@given(st.text(max_size=300), st.lists(st.integers(1, 5), max_size=5))
@settings(max_examples=200, deadline=None)
def test_any_model_text_renders_as_text_only(text, cited):
    out = answer_html(text, 1, cited)
    assert_only_our_markup(out)
    # the visible text is exactly the model's text (markers included)
    assert "".join(parse(out).text) == text


def _view(before="Before. ", quote="The cited words.", after=" After.", n=1, source="d.txt"):
    return SourceView(n, source, 2, before, quote, after)


def test_documents_cannot_inject_markup_anywhere():
    view = _view(PAYLOAD, PAYLOAD, PAYLOAD, source='evil"><img src=x onerror=alert(1)>.txt')
    turns = [
        ChatTurn(1, PAYLOAD, f"{PAYLOAD} [1]", ANSWERED, (view,)),
        ChatTurn(2, PAYLOAD, "The documents don't say.", REFUSED),
        ChatTurn(3, PAYLOAD, "", FAILED, note=PAYLOAD),
        ChatTurn(4, PAYLOAD, PAYLOAD, STOPPED, note=PAYLOAD),
    ]
    for out in (transcript_html(turns), sources_html(turns)):
        assert_only_our_markup(out)
        assert "<script" not in out and "<img" not in out
        assert "&lt;script&gt;" in out
    from qa.records import DocumentInfo
    from qa.web.render import FileResult

    docs = documents_html([DocumentInfo(PAYLOAD, "x", PAYLOAD, 0.0, 10, 3)])
    report = report_html([FileResult(PAYLOAD, "skipped", PAYLOAD)], PAYLOAD)
    for out in (docs, report):
        assert_only_our_markup(out)
        assert "<script" not in out


def test_copy_button_carries_answer_and_sources_as_an_escaped_attribute():
    turn = ChatTurn(1, "q?", 'Yes "quoted" <x> [1]', ANSWERED, (_view(),))
    text = copy_text(turn)
    assert text.startswith('Yes "quoted" <x> [1]') and "[1] d.txt, p. 2: “The cited words.”" in text
    out = transcript_html([turn])
    (button,) = [a for t, a in parse(out).tags if t == "button"]
    assert dict(button)["data-copy"] == text  # the parser un-escapes the attribute exactly


def test_cited_span_is_highlighted_inside_its_passage():
    out = sources_html([ChatTurn(5, "q?", "A [1]", ANSWERED, (_view(),))])
    assert 'id="qa-src-5-1"' in out
    assert re.search(r"Before\. <mark class=\"qa-hl\">The cited words\.</mark> After\.", out)
    assert "p. 2" in out and "d.txt" in out


def test_refusal_is_rendered_as_a_refusal_not_an_answer():
    out = transcript_html([ChatTurn(1, "q?", "The documents don't say.", REFUSED)])
    assert 'data-status="refused"' in out and "qa-refused" in out
    assert "Not found in the documents" in out and "qa-cite" not in out
    assert "nothing is cited" in sources_html([ChatTurn(1, "q?", "x", REFUSED)])


def test_source_views_use_the_exact_span_and_the_cited_passage():
    text = "First sentence here. Ford called it completely false. Last one."
    start = text.index("Ford")
    end = text.index("Last") - 1
    quote = text[start:end]
    hit = Hit(7, "a.txt", text, 0, len(text), 1.0, page=None)
    answer = Answer(
        "q",
        "It was false [1].",
        (Citation(1, "a.txt", start, end, quote, None, 7),),
        passages=(hit,),
    )
    (view,) = source_views(answer, {"a.txt": text}.__getitem__)
    assert view.quote == quote and view.before == text[:start] and view.after == text[end:]
    assert view.passage == text
    # offsets that no longer match the document: the quote alone, nothing invented
    stale = Answer("q", "x [1]", (Citation(1, "a.txt", 0, 5, "other", None, 7),), passages=(hit,))
    (view,) = source_views(stale, {"a.txt": text}.__getitem__)
    assert (view.before, view.quote, view.after) == ("", "other", "")


# --- uploads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\x.md", "x.md"),
        (".bashrc", "bashrc"),
        ("..", "upload"),
        ("", "upload"),
        ("a\x00b<>|:*?.txt", "ab______.txt"),
        ("report 2024 (final).pdf", "report 2024 (final).pdf"),
        ("/abs/path/notes.html", "notes.html"),
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_safe_filename_never_escapes_the_upload_folder(name):
    safe = safe_filename(name)
    assert safe and len(safe) <= MAX_NAME
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe not in (".", "..")
    root = Path("/srv/uploads")
    assert (root / safe).resolve().parent == root


def test_long_names_keep_their_suffix():
    safe = safe_filename("x" * 500 + ".docx")
    assert len(safe) == MAX_NAME and safe.endswith(".docx")


def test_stage_uploads_checks_type_and_size(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    good = incoming / "good.txt"
    good.write_text("fine")
    big = incoming / "big.md"
    big.write_bytes(b"x" * 2000)
    exe = incoming / "tool.exe"
    exe.write_bytes(b"MZ")
    staged = stage_uploads([good, big, exe], tmp_path / "uploads", max_bytes=1000)
    assert [p.name for p in staged.paths] == ["good.txt"]
    assert (tmp_path / "uploads" / "good.txt").read_text() == "fine"
    outcomes = {r.name: (r.outcome, r.detail) for r in staged.refused}
    assert outcomes["big.md"][0] == "refused" and "too large" in outcomes["big.md"][1]
    assert outcomes["tool.exe"][0] == "skipped" and ".exe" in outcomes["tool.exe"][1]
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["good.txt"]


# --- exposure --------------------------------------------------------------------------


def test_non_loopback_needs_auth_or_insecure(monkeypatch):
    monkeypatch.delenv("QA_AUTH", raising=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host) and check_exposure(host, None) is None
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        assert not is_loopback(host)
        with pytest.raises(BadInput, match="--auth"):
            check_exposure(host, None)
        assert check_exposure(host, None, insecure=True) is None
        assert check_exposure(host, "ann:s3cret:x") == ("ann", "s3cret:x")
    monkeypatch.setenv("QA_AUTH", "bob:pw")
    assert check_exposure("0.0.0.0", None) == ("bob", "pw")
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(BadInput):
            parse_auth(bad)


def test_serve_refuses_an_exposed_host_before_starting(monkeypatch, tmp_path):
    from qa.web.app import serve

    monkeypatch.delenv("QA_AUTH", raising=False)
    with pytest.raises(BadInput, match="expose"):
        serve(host="0.0.0.0", port=free_port(), index_dir=tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_app_py_refuses_an_exposed_host_with_a_one_line_error(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "QA_AUTH"}
    done = subprocess.run(
        [sys.executable, str(root / "app.py"), "--host", "0.0.0.0", "--index", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: serving on 0.0.0.0") and "--auth" in done.stderr
    assert done.stderr.count("\n") == 1


# --- the chat handler with a fake engine ------------------------------------------------


class FakeEngine:
    """Yields the first hit's first sentence word by word, then an Answer citing it.
    Questions containing "unknown" are refused; "explode" raises."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.gate: threading.Event | None = None

    def __call__(self, question, index, history, k, model, mode, settings):
        self.calls.append(
            {"question": question, "history": list(history), "k": k, "mode": mode, "model": model}
        )
        if "explode" in question:
            raise RuntimeError("boom")
        if "badinput" in question:
            raise BadInput("the model file is missing: run `make model`")
        hits = index.search(question, k)
        if "unknown" in question or not hits:
            yield "The documents don't say."
            yield Answer(question, "The documents don't say.", refused=True, passages=tuple(hits))
            return
        hit = hits[0]
        text = index.document_text(hit.source)
        end = text.find(".", hit.start) + 1 or hit.end
        quote = text[hit.start : end]
        for word in quote.split():
            if self.gate is not None:
                self.gate.wait(5)
            yield word + " "
        yield Answer(
            question,
            f"{quote} [1]",
            (Citation(1, hit.source, hit.start, end, quote, hit.page, hit.chunk_id),),
            query=question,
            mode=mode,
            passages=(hit,),
            timings={"total": 0.01},
        )


class ScriptedEngine(Engine):
    """The real engine (index, request checks, documents) with answers from a `FakeEngine`."""

    def __init__(self, *args, fake: FakeEngine, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fake = fake

    def ask_stream(self, question, history=None, *, k=None, mode=None, model=None,
                   temperature=None, max_tokens=None, options=None):  # fmt: skip
        req = self.request(k=k, mode=mode, model=model, temperature=temperature)
        return self.fake(
            question, self.index, history or [], req.settings.k, req.model, req.mode, req.settings
        )


@pytest.fixture
def fake_app(tmp_path, docs, fake_embedder, settings):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.gguf").write_bytes(b"GGUF")
    fake = FakeEngine()
    engine = ScriptedEngine(settings.with_(model=models / "tiny.gguf"), index=index, fake=fake)
    app = ChatApp(engine, max_upload_mb=0.001)
    app.fake = fake
    yield app
    index.close()


def run(app, question, turns=None, session="s1", **kw):
    return list(app.respond(question, turns or [], session=session, **kw))


def test_answers_stream_then_the_final_text_replaces_the_streamed_one(fake_app):
    states = run(fake_app, "  Where is Mount Etna?  ")
    first_box, first_turns, first_html, _ = states[0]
    assert first_box == "" and first_turns[-1].question == "Where is Mount Etna?"
    streamed = [s[1][-1] for s in states[1:-1]]
    assert len(streamed) >= 3 and all(t.status == "streaming" for t in streamed)
    assert len(streamed[-1].text) > len(streamed[0].text)
    final = states[-1][1][-1]
    assert final.status == ANSWERED and final.text.endswith("[1]") and final.answer is not None
    assert final.sources and "Etna" in final.sources[0].quote
    assert 'class="qa-cite"' in states[-1][2] and "<mark" in states[-1][3]


def test_empty_question_does_nothing(fake_app):
    before = [ChatTurn(1, "q", "a", ANSWERED)]
    (state,) = run(fake_app, "   ", before)
    assert state[1] == before and fake_app.fake.calls == []


def test_history_is_passed_and_settings_are_mapped(fake_app):
    turns = run(fake_app, "Where is Mount Etna?", k=3, mode="Extractive")[-1][1]
    run(fake_app, "Does it erupt often?", turns, k=4, mode="Model", model_name="tiny.gguf")
    run(fake_app, "Where is the Nile?")  # no mode: the settings' (QA_MODE, default extractive)
    first, second, third = fake_app.fake.calls
    assert first["mode"] == "extractive" and first["k"] == 3 and first["model"] is None
    assert second["mode"] == "llm" and second["model"].name == "tiny.gguf"
    assert [a.question for a in second["history"]] == ["Where is Mount Etna?"]
    assert third["mode"] == fake_app.settings.mode == "extractive"
    assert fake_app.default_mode == "Extractive"


def test_refusal_and_errors_are_shown_and_the_app_keeps_answering(fake_app):
    refused = run(fake_app, "Something unknown entirely?")[-1][1][-1]
    assert refused.status == REFUSED and refused.sources == ()
    failed = run(fake_app, "please explode now")[-1][1][-1]
    assert failed.status == FAILED and "internal error" in failed.note and "boom" in failed.note
    bad = run(fake_app, "badinput question")[-1][1][-1]
    assert bad.status == FAILED and "make model" in bad.note
    unknown_model = run(
        fake_app, "Where is Mount Etna?", mode="Model", model_name="../../etc/passwd"
    )
    assert unknown_model[-1][1][-1].status == FAILED
    assert "unknown model" in unknown_model[-1][1][-1].note
    assert run(fake_app, "Where is Mount Etna?")[-1][1][-1].status == ANSWERED


def test_stop_ends_only_that_sessions_answer(fake_app):
    fake_app.fake.gate = threading.Event()
    fake_app.fake.gate.set()
    gen = fake_app.respond("Where is Mount Etna?", [], session="alice")
    next(gen)  # the question is shown
    next(gen)  # the first word streamed
    fake_app.stop("bob")  # another session's stop changes nothing here
    nxt = next(gen)
    assert nxt[1][-1].status == "streaming"
    fake_app.stop("alice")
    rest = list(gen)
    final = rest[-1][1][-1]
    assert final.status == STOPPED and final.answer is None and final.text
    assert "Stopped" in rest[-1][2]
    # the next question of that session runs normally
    assert run(fake_app, "Where is Mount Etna?", session="alice")[-1][1][-1].status == ANSWERED


def test_model_choices_come_from_the_models_folder(fake_app):
    offered = fake_app.models()
    assert list(offered)[0] == "tiny.gguf"  # the configured model's folder first
    assert all(p.suffix == ".gguf" and p.parent.name == "models" for p in offered.values())
    with pytest.raises(BadInput, match="unknown model"):
        fake_app.engine.request(mode="llm", model="other.gguf")


def test_clear_empties_the_conversation(fake_app):
    box, turns, chat, sources = fake_app.clear("s1")
    assert turns == [] and "Ask a question" in chat and "Cited passages appear here" in sources


# --- documents: upload, delete, rebuild ----------------------------------------------------


def test_upload_reports_each_file_and_indexes_incrementally(fake_app, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "owls.txt").write_text("Owls hunt at night. Barn owls nest in old barns.")
    (incoming / "data.7z").write_bytes(b"7z\xbc\xaf\x27\x1c")
    (incoming / "huge.txt").write_text("x" * 5000)  # the fixture's cap is 1000 bytes
    (incoming / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    files = [incoming / n for n in ("owls.txt", "data.7z", "huge.txt", "broken.pdf")]
    calls = []
    out = fake_app.upload(files, progress=lambda *a, **k: calls.append((a, k)))
    rows = dict(re.findall(r"<td>([^<]+)</td><td class=\"qa-outcome\">(\w+)</td>", out))
    assert rows == {
        "owls.txt": "indexed",
        "data.7z": "skipped",
        "huge.txt": "refused",
        "broken.pdf": "failed",
    }
    assert "too large" in out and "unsupported file type .7z" in out
    assert calls, "progress was reported"
    sources = fake_app.document_sources()
    assert "uploads/owls.txt" in sources and "uploads/broken.pdf" not in sources
    assert sorted(p.name for p in fake_app.upload_dir.iterdir()) == ["owls.txt"]
    # the same file again: unchanged; a new version: updated
    assert "unchanged" in fake_app.upload([incoming / "owls.txt"])
    (incoming / "owls.txt").write_text("Owls hunt at night. Snowy owls live in the Arctic.")
    assert ">updated<" in fake_app.upload([incoming / "owls.txt"])
    assert fake_app.engine.search("Snowy owls Arctic", 1)[0].source == "uploads/owls.txt"
    assert "No files chosen" in fake_app.upload(None)


def test_the_page_lists_every_format_the_upload_accepts(fake_app, monkeypatch):
    from qa.ingest import ocr
    from qa.ingest.walk import SUFFIXES
    from qa.web.files import FORMAT_GROUPS, formats_view

    listed = [
        x for _, formats in FORMAT_GROUPS for _, suffixes in formats for x in suffixes.split()
    ]
    assert sorted(listed) == sorted(SUFFIXES)  # each once, nothing the loaders do not read
    page = fake_app.formats_view()
    assert all(f"{s}</code>" in page or f"{s} " in page for s in SUFFIXES)
    assert '<th scope="row">Spreadsheets</th>' in page and "read by OCR" in page
    assert_only_our_markup(page)
    assert "OCR is off" in formats_view(ocr=False)
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    assert "apt-get install tesseract-ocr" in formats_view()


def test_upload_progress_counts_ocr_pages(tmp_path):
    from qa.web.chat import _file_progress

    calls = []
    on = _file_progress(lambda *a, **k: calls.append((a, k)))
    on("files", 0, 2)
    on("ocr", 1, None)
    on("ocr", 2, None)
    on("files", 1, 2)
    descs = [k["desc"] for _, k in calls]
    assert descs == [
        "Indexing files (0/2)",
        "Indexing files (0/2), OCR: 1 page read",
        "Indexing files (0/2), OCR: 2 pages read",
        "Indexing files (1/2), OCR: 2 pages read",
    ]
    assert [a for a, _ in calls][1] == ((0, 2),)


def test_delete_removes_the_document_and_its_uploaded_file(fake_app, tmp_path):
    (tmp_path / "owls.txt").write_text("Owls hunt at night.")
    fake_app.upload([tmp_path / "owls.txt"])
    out = fake_app.delete("uploads/owls.txt")
    assert "removed" in out
    assert "uploads/owls.txt" not in fake_app.document_sources()
    assert not (fake_app.upload_dir / "owls.txt").exists()
    assert "Could not delete" in fake_app.delete("uploads/owls.txt")
    assert "Choose a document" in fake_app.delete(None)


def test_rebuild_indexes_the_roots_and_uploads_again(fake_app, tmp_path):
    (tmp_path / "owls.txt").write_text("Owls hunt at night.")
    fake_app.upload([tmp_path / "owls.txt"])
    before = sorted(fake_app.document_sources())
    old = fake_app.engine.status().database
    out = fake_app.rebuild()
    assert "Rebuilt" in out and fake_app.engine.status().database != old
    assert sorted(fake_app.document_sources()) == before
    assert fake_app.engine.search("Owls hunt", 1)[0].source == "uploads/owls.txt"
    assert all(t.status == ANSWERED for t in [run(fake_app, "Where is Mount Etna?")[-1][1][-1]])


def test_documents_view_lists_chunk_counts(fake_app):
    out = fake_app.documents_view()
    for d in fake_app.engine.documents():
        assert f"<td>{d.source}</td>" in out
    assert f"{len(fake_app.engine.documents())} documents" in out


# --- the app launched in-process, used over loopback ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app (real embedder, real default model) on a free loopback port."""
    from qa.web.app import serve

    root = tmp_path_factory.mktemp("ui-app")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.load(index_dir=root / "index")
    Index.build([root / "corpus"], root / "index", settings=settings).close()
    extra = root / "more-models"
    extra.mkdir()
    (extra / "broken.gguf").write_bytes(b"not a model")
    shutil.copy(settings.model, extra / settings.model.name)  # the models on offer: this folder
    settings = settings.with_(model=extra / settings.model.name)
    port = free_port()
    app = serve(port=port, settings=settings, block=False, warm=False, quiet=True)
    yield app, f"http://127.0.0.1:{port}/", root
    app.close()
    app.qa.engine.close()


@pytest.mark.slow
def test_auth_is_required_when_given_and_a_busy_port_is_reported(served, tmp_path):
    from gradio_client import Client

    from qa.web.app import serve

    app, url, root = served
    port = free_port()
    settings = Settings.load(index_dir=root / "index")
    secured = serve(
        port=port, auth="ann:s3cret", settings=settings, block=False, warm=False, quiet=True
    )
    try:
        with pytest.raises(Exception):  # noqa: B017 (the client's error type varies)
            Client(f"http://127.0.0.1:{port}/", verbose=False)
        c = Client(f"http://127.0.0.1:{port}/", auth=("ann", "s3cret"), verbose=False)
        assert "/ask" in c.view_api(print_info=False, return_format="dict")["named_endpoints"]
        with pytest.raises(BadInput, match="another --port"):
            serve(port=port, settings=settings, block=False, warm=False, quiet=True)
    finally:
        secured.close()
        secured.qa.engine.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_app_answers_the_ford_question_with_a_highlighted_citation(served):
    app, url, _ = served
    c = client(url)
    job = c.submit(FORD_QUESTION, 5, "Model", MODEL, 0.0, api_name="/ask")
    _, chat, sources = job.result(timeout=600)
    outputs = job.outputs()
    assert len(outputs) >= 3, "the answer streamed in pieces"
    assert 'data-status="answered"' in chat, chat
    assert 'class="qa-cite"' in chat
    marked = re.findall(r'<mark class="qa-hl">(.*?)</mark>', sources, re.S)
    assert any("completely false" in m for m in marked), sources
    assert "ford-xiaomi-joint-venture.txt" in sources


@pytest.mark.slow
def test_sessions_have_their_own_history_and_run_concurrently(served):
    _, url, _ = served
    a, b = client(url), client(url)
    # both on the one shared model at once: Gradio's queue runs them side by side, the
    # model's lock serialises generation, and each gets its own, complete answer
    job_a = a.submit(FORD_QUESTION, 5, "Model", MODEL, 0.0, api_name="/ask")
    job_b = b.submit("Who is the CEO of Ford?", 5, "Model", MODEL, 0.0, api_name="/ask")
    chat_a = job_a.result(timeout=900)[1]
    chat_b = job_b.result(timeout=900)[1]
    for chat in (chat_a, chat_b):
        assert 'data-status="error"' not in chat and 'data-status="streaming"' not in chat
    assert "Did Ford deny" in chat_a and "Who is the CEO" not in chat_a
    assert "Who is the CEO" in chat_b and "Did Ford deny" not in chat_b
    # a follow-up in session a sees a's history, not b's
    chat_a2 = a.predict("And Xiaomi?", 5, "Extractive", MODEL, 0.0, api_name="/ask")[1]
    assert chat_a2.count('class="qa-turn"') == 2 and "Who is the CEO" not in chat_a2


@pytest.mark.slow
def test_upload_over_http_then_ask_about_the_new_document(served, tmp_path):
    from gradio_client import handle_file

    _, url, root = served
    doc = tmp_path / "zorblat festival.txt"
    doc.write_text(
        "Quentin Harbor hosts the Zorblat lantern festival every March. "
        "The Zorblat lantern festival was founded in 1887 by a sailor named Ada Pellworth.\n"
    )
    bad = tmp_path / "notes.xyz"
    bad.write_text("not a document type")
    c = client(url)
    report, docs, _, _ = c.predict(
        [handle_file(str(doc)), handle_file(str(bad))], api_name="/upload"
    )
    assert "indexed" in report and "unsupported file type .xyz" in report
    assert "uploads/zorblat festival.txt" in docs
    assert (root / "uploads" / "zorblat festival.txt").is_file()
    chat, sources = c.predict(
        "Who founded the Zorblat lantern festival?", 5, "Extractive", MODEL, 0.0, api_name="/ask"
    )[1:]
    assert "Ada Pellworth" in chat and "uploads/zorblat festival.txt" in sources


@pytest.mark.slow
def test_a_failing_request_shows_a_message_and_the_app_keeps_running(served):
    _, url, _ = served
    from gradio_client.exceptions import AppError

    c = client(url)
    with pytest.raises(AppError, match="not in the list of choices"):  # Gradio checks first
        c.predict(FORD_QUESTION, 5, "Model", "../../etc/passwd", 0.0, api_name="/ask")
    chat = c.predict(FORD_QUESTION, 5, "Model", "broken.gguf", 0.0, api_name="/ask")[1]
    assert 'data-status="error"' in chat and "not a GGUF model file" in chat
    chat = c.predict("   ", 5, "Extractive", MODEL, 0.0, api_name="/ask")[1]
    assert chat.count('class="qa-turn"') == 1  # the empty question added nothing
    chat = c.predict(FORD_QUESTION, 5, "Extractive", MODEL, 0.0, api_name="/ask")[1]
    assert chat.count('data-status="answered"') == 1


def test_no_share_link_and_no_analytics_anywhere():
    import qa.config  # noqa: F401  (sets GRADIO_ANALYTICS_ENABLED)

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    root = Path(__file__).resolve().parent.parent
    for path in [root / "app.py", *sorted((root / "qa").glob("ui*.py"))]:
        text = path.read_text()
        assert not re.search(r"share\s*=\s*True", text), path
        for address in re.findall(r"https?://[^\s\"')]+", text):
            assert address.startswith(("http://127.0.0.1", "http://{")), (path, address)
