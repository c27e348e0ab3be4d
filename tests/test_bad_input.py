"""Bad input: a corpus of broken, odd and hostile files, built by the test. Indexing never
crashes, each bad file gets exactly one one-line message, everything else is indexed (and
searchable), and the exit code tells full success (0) from partial success (3).
Limits (file size, passages per file) are configurable and reported when hit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from test_index import consistent

from qa import Index, Settings
from qa.config import PROJECT_ROOT
from qa.errors import BadInput

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
QA = PROJECT_ROOT / ".venv" / "bin" / "qa"
ROOT_USER = os.geteuid() == 0  # root reads a chmod 000 file: that case is simulated too

# The real CLI with the fake embedder, for the heavy cases (the CLI code path is unchanged).
FAKE_CLI = (
    "import sys; sys.path.insert(0, {tests!r}); from fakes import FakeEmbedder; "
    "import qa.index.core; qa.index.core.get_embedder = lambda *a, **k: FakeEmbedder(); "
    "from qa.cli import main; sys.exit(main(sys.argv[1:]))"
)
# Reading files named "locked*" fails as it does for a file without read permission.
DENY_CLI = (
    "import pathlib; _read = pathlib.Path.read_bytes\n"
    "def read_bytes(self):\n"
    "    if self.name.startswith('locked'):\n"
    "        raise PermissionError(13, 'Permission denied', str(self))\n"
    "    return _read(self)\n"
    "pathlib.Path.read_bytes = read_bytes\n"
)


@dataclass
class Corpus:
    root: Path
    good: dict[str, str] = field(default_factory=dict)  # path under root -> unique word
    bad: dict[str, str] = field(default_factory=dict)  # path under root -> part of the reason
    ignored: set[str] = field(default_factory=set)  # unsupported types: listed, not failures
    texts: dict[str, str] = field(default_factory=dict)  # path -> text the index must hold


def _word(n: int) -> str:
    return "marker" + "".join("abcdefghij"[int(d)] for d in f"{n:03d}")


def build_corpus(root: Path, huge: bool = True) -> Corpus:
    """Every kind of bad file the issue lists, among good files that must still be indexed."""
    root.mkdir(parents=True)
    c = Corpus(root)
    n = iter(range(1000))

    def good(rel: str, text: str, encoding: str = "utf-8") -> None:
        word = _word(next(n))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        full = f"{text} The unique word of this file is {word}."
        path.write_bytes(full.encode(encoding))
        c.good[rel], c.texts[rel] = word, full.lstrip("\ufeff")

    def bad(rel: str, data: bytes, reason: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        c.bad[rel] = reason

    good("plain.txt", "Lighthouses guide ships along the rocky coast.")
    good("notes.md", "# Notes\n\nThe harbour master keeps a tide log.")
    good("latin1.txt", "Crème brûlée et café au lait à Noël, façon française.", "latin-1")
    good("windows.txt", "He said \u201chello\u201d \u2013 it cost \u20ac5.", "cp1252")
    good("utf16.txt", "Grüße aus Köln, schöne Straße.", "utf-16")  # with a BOM
    good("utf16be.md", "\ufeffŁódź and Kraków are cities in Poland.", "utf-16-be")
    good("name with spaces.txt", "Spaces in file names are fine.")
    good("ünïcödé 日本語.txt", "Unicode file names are fine.")
    good("new\nline.txt", "A newline in a file name is fine.")
    deep = "/".join(f"level{i:02d}" for i in range(60))
    good(f"{deep}/deep.txt", "This file sits sixty folders deep.")
    # damaged UTF-8: the last character cut off; the rest is kept
    good("cut-off.txt", "Naïve café owners serve résumé-worthy crêpes ü")
    path = root / "cut-off.txt"
    path.write_bytes(path.read_bytes() + "é".encode()[:1])
    c.texts["cut-off.txt"] += "\ufffd"

    bad("empty.txt", b"", "empty file")
    bad("zero.pdf", b"", "empty file")
    bad("truncated.pdf", (FIXTURES / "sample.pdf").read_bytes()[:300], "PDF")
    bad("encrypted.pdf", _encrypted_pdf(), "encrypted PDF")
    bad("binary.txt", b"\x7fELF\x02\x01\x01\x00" + os.urandom(2048), "binary data")
    bad("invalid-utf8.txt", bytes(range(0x80, 0x100)) * 8, "invalid UTF-8")
    bad("script-only.html", b"<html><head><script>alert(1)</script></head><body>"
        b"<script>document.write('x')</script></body></html>", "no text")  # fmt: skip
    bad("bad\nname.pdf", b"%PDF-1.4 not really", "PDF")
    if huge:  # 50 MB on one line: more than the default passages limit can hold
        line = b"All work and no play makes a very dull line of text. " * 20
        with open(root / "huge.txt", "wb") as f:
            for _ in range(50_000_000 // len(line)):
                f.write(line)
        c.bad["huge.txt"] = "too long"
    os.symlink("self-loop.txt", root / "self-loop.txt")
    c.bad["self-loop.txt"] = "symbolic link loop"
    os.symlink("missing-target.md", root / "dangling.md")
    c.bad["dangling.md"] = "broken symbolic link"
    os.symlink("..", root / "level00" / "back-to-top")  # a folder loop: walked once
    name = os.fsencode(root) + b"/caf\xe9-latin1-name.txt"
    with open(name, "wb") as f:
        f.write(b"A file name that is not UTF-8.")
    c.bad[os.fsdecode(name)[len(str(root)) + 1 :]] = "not valid UTF-8"
    (root / "unreadable.txt").write_text("Root can read this file anyway.", "utf-8")
    (root / "unreadable.txt").chmod(0)
    if ROOT_USER:
        c.good["unreadable.txt"] = ""
        c.texts["unreadable.txt"] = "Root can read this file anyway."
    else:
        c.bad["unreadable.txt"] = "Permission denied"
    bad("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "corrupt or unreadable PNG image")
    (root / "archive.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(64))
    c.ignored.add("archive.7z")
    return c


def _encrypted_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=FIXTURES / "sample.pdf")
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def source(corpus: Corpus, rel: str) -> str:
    return f"{corpus.root.name}/{rel}"


def escaped(name: str) -> str:
    """A name with undecodable bytes (a file name that is not UTF-8) as the index reports it."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def fake_settings(tmp_path: Path, **changes) -> Settings:
    return Settings.load(index_dir=tmp_path / "index", chunk_tokens=48, chunk_overlap=8, **changes)


def check_report(corpus: Corpus, report) -> None:
    """Each bad file: exactly one one-line reason; everything else indexed."""
    names = [s.source for s in report.skipped]
    assert len(names) == len(set(names)), "one message per file"
    failed = {s.source: s.reason for s in report.skipped if s.failed}
    expected = {escaped(source(corpus, rel)): reason for rel, reason in corpus.bad.items()}
    assert set(failed) == set(expected), (set(failed) ^ set(expected), failed)
    for name, reason in failed.items():
        assert expected[name] in reason, (name, reason)
        assert reason.strip() and "\n" not in reason and "Traceback" not in reason
    ignored = {s.source for s in report.skipped if not s.failed}
    assert ignored == {source(corpus, rel) for rel in corpus.ignored}
    assert set(report.added) == {source(corpus, rel) for rel in corpus.good}


def check_index(corpus: Corpus, index: Index) -> None:
    sources = [d.source for d in index.documents()]
    assert sorted(sources) == sorted(source(corpus, rel) for rel in corpus.good)
    assert not any("back-to-top" in s for s in sources), "a folder loop is walked once"
    for rel, word in corpus.good.items():
        assert index.document_text(source(corpus, rel)) == corpus.texts[rel]
        if word:
            hits = index.search(word, k=1, mode="bm25")
            assert hits and hits[0].source == source(corpus, rel), (rel, word)
    consistent(index)


# --- the Python API ------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_corpus_through_the_api(tmp_path, fake_embedder):
    corpus = build_corpus(tmp_path / "docs")
    settings = fake_settings(tmp_path)
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder, create=True)
    try:
        check_report(corpus, index.sync([corpus.root]))
        check_index(corpus, index)
        # decoded text, searchable by its accented words too
        assert index.search("brûlée façon", k=1, mode="bm25")[0].source == "docs/latin1.txt"
        assert index.search("Straße Köln", k=1)[0].source == "docs/utf16.txt"
        # a second run: nothing new, the same one message per bad file
        again = index.sync([corpus.root])
        assert not again.added and not again.updated and not again.removed
        assert set(again.skipped) == set(index.sync([corpus.root]).skipped)
        assert {s.source for s in again.skipped if s.failed} == {
            escaped(source(corpus, rel)) for rel in corpus.bad
        }
        check_index(corpus, index)
    finally:
        index.close()


def test_permission_denied_is_one_message_even_as_root(tmp_path, fake_embedder, monkeypatch):
    """Simulated with a PermissionError, since a chmod 000 file is readable to root."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "locked.txt").write_text("Secret tide tables.", "utf-8")
    (docs / "open.txt").write_text("Public tide tables.", "utf-8")
    read = Path.read_bytes

    def deny(self):
        if self.name.startswith("locked"):
            raise PermissionError(13, "Permission denied", str(self))
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    index = Index.build([docs], settings=fake_settings(tmp_path), embedder=fake_embedder)
    report = index.sync([docs])
    assert [(s.source, s.reason, s.failed) for s in report.skipped] == [
        ("docs/locked.txt", "cannot read: Permission denied", True)
    ]
    assert [d.source for d in index.documents()] == ["docs/open.txt"]
    index.close()


@pytest.mark.skipif(ROOT_USER, reason="root can list a folder without permissions")
def test_unreadable_folder_is_one_message(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    (docs / "closed").mkdir(parents=True)
    (docs / "closed" / "a.txt").write_text("Hidden away.", "utf-8")
    (docs / "open.txt").write_text("In plain sight.", "utf-8")
    (docs / "closed").chmod(0)
    try:
        index = Index.build([docs], settings=fake_settings(tmp_path), embedder=fake_embedder)
        report = index.sync([docs])
    finally:
        (docs / "closed").chmod(0o755)
    assert [(s.source, s.failed) for s in report.skipped] == [("docs/closed", True)]
    assert "cannot read folder" in report.skipped[0].reason
    index.close()


@pytest.mark.slow
def test_ten_thousand_tiny_files(tmp_path, fake_embedder):
    docs = tmp_path / "many"
    for i in range(10):
        (docs / f"group{i}").mkdir(parents=True)
    for i in range(10_000):
        (docs / f"group{i % 10}" / f"tiny{i:05d}.txt").write_text(
            f"Tiny note {i} mentions {_word(i % 1000)}{i}.", "utf-8"
        )
    settings = fake_settings(tmp_path)
    index = Index.build([docs], settings=settings, embedder=fake_embedder)
    assert len(index.documents()) == 10_000 and len(index) == 10_000
    hits = index.search(f"{_word(4321 % 1000)}4321", k=1, mode="bm25")
    assert hits[0].source == "many/group1/tiny04321.txt"
    consistent(index)
    index.close()
    # the CLI over the same folder: nothing to do, full success
    done = run_cli(["index", docs, "--index", settings.index_dir, "--add"], tmp_path, fake=True)
    assert done.returncode == 0, done.stderr
    assert "10000 unchanged" in done.stdout and "Traceback" not in done.stderr


# --- the command line ----------------------------------------------------------------------


def run_cli(argv, cwd: Path, fake: bool, deny: bool = False, env=None):
    argv = [str(a) for a in argv]
    if fake:
        command = [sys.executable, "-c", (DENY_CLI if deny else "") + FAKE_CLI.format(tests=str(TESTS)), *argv]  # fmt: skip
    else:
        command = [str(QA), *argv]
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QA_INDEX": str(cwd / "index"), **(env or {})},
    )


def display(name: str) -> str:
    """How the CLI prints a file name on one line."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name)


def check_cli_output(corpus: Corpus, out: str) -> None:
    lines = out.splitlines()
    failed = [line for line in lines if line.startswith("  failed ")]
    assert len(failed) == len(corpus.bad), failed
    for rel, reason in corpus.bad.items():
        shown = f"  failed {display(escaped(source(corpus, rel)))}: "
        mine = [line for line in failed if line.startswith(shown)]
        assert len(mine) == 1 and reason in mine[0], (rel, failed)
    assert any(line.startswith("  skipped docs/archive.7z: unsupported") for line in lines)
    assert f"{len(corpus.good)} added" in out


@pytest.mark.slow
def test_bad_corpus_through_the_cli_with_the_real_embedder(tmp_path):
    corpus = build_corpus(tmp_path / "docs")
    done = run_cli(["index", "docs"], tmp_path, fake=False)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 3, (done.stdout, done.stderr)  # partial success
    check_cli_output(corpus, done.stdout)
    # the good documents are searchable through the CLI too
    found = run_cli(["search", "Grüße aus Köln", "-k", "1", "--json"], tmp_path, fake=False)
    assert found.returncode == 0 and "docs/utf16.txt" in found.stdout
    # without the bad files the same folder indexes fully: exit 0
    for rel in corpus.bad:
        (corpus.root / rel).unlink()
    again = run_cli(["index", "docs"], tmp_path, fake=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "failed" not in again.stdout and "skipped docs/archive.7z" in again.stdout


@pytest.mark.slow
def test_permission_denied_through_the_cli(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "locked notes.txt").write_text("Closed.", "utf-8")
    (corpus / "locked.md").write_text("Closed too.", "utf-8")
    (corpus / "open.txt").write_text("Open.", "utf-8")
    done = run_cli(["index", "docs"], tmp_path, fake=True, deny=True)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert "  failed docs/locked notes.txt: cannot read: Permission denied" in done.stdout
    assert "  failed docs/locked.md: cannot read: Permission denied" in done.stdout
    assert "1 added" in done.stdout


# --- limits ----------------------------------------------------------------------------------


def test_limits_are_settings_with_environment_variables(monkeypatch):
    defaults = Settings.load()
    assert defaults.max_file_mb == 100.0 and defaults.max_chunks_per_file == 10_000
    monkeypatch.setenv("QA_MAX_FILE_MB", "2.5")
    monkeypatch.setenv("QA_MAX_CHUNKS_PER_FILE", "40")
    s = Settings.load()
    assert (s.max_file_mb, s.max_chunks_per_file) == (2.5, 40)
    assert Settings.load(max_chunks_per_file=7).max_chunks_per_file == 7  # flags win
    with pytest.raises(BadInput, match="at least 1"):
        Settings.load(max_chunks_per_file=0)
    with pytest.raises(BadInput, match="positive"):
        Settings.load(max_file_mb=-1)
    monkeypatch.setenv("QA_MAX_FILE_MB", "lots")
    with pytest.raises(BadInput, match="QA_MAX_FILE_MB"):
        Settings.load()


def _long_doc(path: Path, sentences: int) -> None:
    path.write_text(
        " ".join(
            f"Sentence {i} talks about harbour number {i} and its cranes." for i in range(sentences)
        ),  # fmt: skip
        "utf-8",
    )


def test_limits_skip_the_file_whole_and_say_how_to_raise_them(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    _long_doc(docs / "long.txt", 200)
    (docs / "short.txt").write_text("A short note about cranes.", "utf-8")
    settings = fake_settings(tmp_path)
    # how many passages long.txt makes, from an index without limits in the way
    with Index.build([docs / "long.txt"], tmp_path / "probe", settings=settings,
                     embedder=fake_embedder) as probe:  # fmt: skip
        (n,) = [d.chunks for d in probe.documents()]
    assert n > 20

    settings = settings.with_(max_file_mb=0.01)  # 10 kB; long.txt is larger
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder, create=True)
    report = index.sync([docs])
    (skip,) = report.skipped
    assert skip.failed and skip.source == "docs/long.txt"
    assert re.search(r"too large: 1\d\.\d kB, the limit is 0.01 MB per file", skip.reason)
    assert "--max-file-mb" in skip.reason and "QA_MAX_FILE_MB" in skip.reason
    assert "\n" not in skip.reason
    index.close()

    settings = settings.with_(max_file_mb=1.0, max_chunks_per_file=n - 1)
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)
    (skip,) = index.sync([docs]).skipped
    assert skip.failed and f"too long: {n} passages, the limit is {n - 1} per file" in skip.reason
    assert "--max-chunks-per-file" in skip.reason and "QA_MAX_CHUNKS_PER_FILE" in skip.reason
    assert [d.source for d in index.documents()] == ["docs/short.txt"]  # never a partial doc
    consistent(index)
    index.close()

    # text far too long for the limit is refused before it is tokenized
    settings = settings.with_(max_chunks_per_file=1)
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder)
    calls: list[int] = []
    spans = fake_embedder.token_spans
    index.embedder.token_spans = lambda texts: calls.append(len(texts)) or spans(texts)
    (skip,) = index.sync([docs]).skipped
    assert "characters of text, more than the limit of 1 passages" in skip.reason
    assert calls == []
    index.close()

    settings = settings.with_(max_chunks_per_file=n)
    index = Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder())
    report = index.sync([docs])
    assert report.added == ("docs/long.txt",) and not report.skipped
    assert {d.source: d.chunks for d in index.documents()}["docs/long.txt"] == n
    consistent(index)
    index.close()


@pytest.mark.slow
def test_limits_through_the_cli_flags_and_environment(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    _long_doc(docs / "long.txt", 200)
    (docs / "short.txt").write_text("A short note about cranes.", "utf-8")
    done = run_cli(["index", "docs", "--max-chunks-per-file", "5"], tmp_path, fake=True)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if "long.txt" in x]
    assert line.startswith("  failed docs/long.txt: too long:") and "5 passages" in line
    assert "--max-chunks-per-file" in line
    done = run_cli(["index", "docs"], tmp_path, fake=True, env={"QA_MAX_FILE_MB": "0.001"})
    assert (
        done.returncode == 3 and "too large" in done.stdout and "limit is 0.001 MB" in done.stdout
    )
    done = run_cli(["index", "docs", "--max-file-mb", "5"], tmp_path, fake=True)
    assert done.returncode == 0 and "1 added" in done.stdout, done.stdout + done.stderr
    done = run_cli(["index", "docs", "--max-chunks-per-file", "0"], tmp_path, fake=True)
    assert done.returncode == 2 and done.stderr.startswith("qa: error:")
    assert len(done.stderr.strip().splitlines()) == 1


# --- the other formats: corrupt, encrypted, empty, huge, zip bombs ----------------------------


def _zip(members: dict[str, bytes], *, deflate: bool = True) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _bomb(member: str) -> bytes:
    """A small zip whose one member unzips to 30 MB of zeros (over 100x its packed size)."""
    return _zip({"[Content_Types].xml": b"<Types/>", member: bytes(30_000_000)})


def _smime() -> bytes:
    return (
        b"From: a@example.org\r\nSubject: Secret\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n"
    )


def build_format_corpus(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """One good file per format (test_formats' facts) and every bad case per format:
    (good file -> a word of its fact, bad file -> part of its reason)."""
    import test_formats as tf

    made = tf.make_all(root)
    good = {name: tf.fact(name).split()[1].strip(".;:") for name in made}
    bad: dict[str, str] = {}

    def put(name: str, data: bytes, reason: str) -> None:
        (root / name).write_bytes(data)
        bad[name] = reason

    for suffix in (".pptx", ".xlsx", ".csv", ".tsv", ".epub", ".odt", ".rtf", ".eml", ".mbox"):
        put(f"empty{suffix}", b"", "empty file")
    for suffix in (".png", ".jpg", ".tiff"):
        put(f"empty{suffix}", b"", "empty file")
    for name, kind in (("deck.pptx", "PPTX"), ("budget.xlsx", "XLSX"), ("novel.epub", "EPUB")):
        data = (root / name).read_bytes()
        put(f"truncated-{name}", data[: len(data) // 3], f"corrupt {kind}")
        put(f"not-zip-{name}", b"plain text, not a zip archive", f"not a {kind} file")
        put(f"encrypted-{name}", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "password")
    put("truncated-minutes.odt", (root / "minutes.odt").read_bytes()[:400], "corrupt ODT")
    put("garbage.odt", _zip({"mimetype": b"application/vnd.oasis.opendocument.text"}), "ODT")
    put(
        "encrypted.odt",
        _zip({"META-INF/manifest.xml": b"<manifest:encryption-data/>", "content.xml": b"x"}),
        "encrypted ODT",
    )
    put(
        "drm.epub",
        _zip(
            {
                "mimetype": b"application/epub+zip",
                "META-INF/encryption.xml": b'<CipherReference URI="OEBPS/ch1.xhtml"/>',
            }
        ),
        "encrypted EPUB (DRM)",
    )
    put("bomb.pptx", _bomb("ppt/slides/slide1.xml"), "zip bomb")
    put("bomb.xlsx", _bomb("xl/worksheets/sheet1.xml"), "zip bomb")
    put("bomb.epub", _bomb("OEBPS/chapter1.xhtml"), "zip bomb")
    put("binary.csv", b"\x7fELF\x02\x01\x01\x00" + bytes(300), "binary data")
    put("not.rtf", b"Just words, no RTF header.", "not an RTF file")
    put("binary.eml", b"\x00\x01\x02" * 100, "not an e-mail message")
    put("headerless.eml", b"no headers here, only words\n", "not an e-mail message")
    put("smime.eml", _smime(), "encrypted message")
    put("not.mbox", b"Subject: hi\n\nno From line", "not an mbox mailbox")
    put("cut.png", (root / "scan.png").read_bytes()[:300], "corrupt or unreadable PNG image")
    put("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(100), "corrupt or unreadable JPEG image")
    put("blank.png", _blank_png(), "no text found in the image")
    rows = b"".join(b"r,%d\n" % i for i in range(500_001))  # 4.9 MB
    put("long.csv", b"name,value\n" + rows, "too large: more than 500,000 rows")
    put("wide.png", _blank_png(8_000, 8_000), "image too large to OCR")  # 64 Mpx, 0.2 MB
    return good, bad


def _blank_png(width: int = 600, height: int = 400) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, "PNG")
    return out.getvalue()


@pytest.mark.skipif(not shutil.which("tesseract"), reason="the image cases need tesseract")
def test_bad_files_of_every_format_get_one_line_and_lose_nothing(tmp_path, fake_embedder):
    """(Files may be loaded in worker processes, so the limits are reached for real.)"""
    root = tmp_path / "docs"
    good, bad = build_format_corpus(root)
    settings = fake_settings(tmp_path)
    index = Index.open(settings.index_dir, settings=settings, embedder=fake_embedder, create=True)
    try:
        report = index.sync([root])
        failed = {s.source.removeprefix("docs/"): s.reason for s in report.skipped if s.failed}
        assert set(failed) == set(bad), set(failed) ^ set(bad)
        for name, reason in failed.items():
            assert bad[name] in reason, (name, reason)
            assert "\n" not in reason and "Traceback" not in reason and len(reason) < 200
        assert set(report.added) == {f"docs/{name}" for name in good}
        for name, word in good.items():
            hits = index.search(word, k=3, mode="bm25")
            assert f"docs/{name}" in [h.source for h in hits], (name, word)
        consistent(index)
    finally:
        index.close()
