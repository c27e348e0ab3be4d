"""PDF loading says the real cause of each failure: a password, a missing package, a page
that failed (the others are kept), no text layer. The PDFs are made here with pypdf."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
from pypdf import PageObject, PdfWriter
from pypdf.errors import DependencyError

from qa.ingest.loaders import Unsupported, load

FIXTURES = Path(__file__).parent / "fixtures"
HAVE_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None
needs_cryptography = pytest.mark.skipif(
    not HAVE_CRYPTOGRAPHY, reason="writing an AES-encrypted PDF needs `cryptography`"
)


def write(writer: PdfWriter, path: Path) -> Path:
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def encrypted(tmp_path: Path, algorithm: str, user_password: str = "") -> Path:
    writer = PdfWriter(clone_from=FIXTURES / "sample.pdf")
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    return write(writer, tmp_path / f"{algorithm}.pdf")


def without_cryptography(monkeypatch) -> None:
    """pypdf as it is when `cryptography` is not installed: its fallback AES, which raises."""
    import pypdf._encryption
    from pypdf._crypt_providers import _fallback

    names = ("CryptAES", "aes_cbc_decrypt", "aes_cbc_encrypt", "aes_ecb_decrypt", "aes_ecb_encrypt")
    for name in names:
        monkeypatch.setattr(pypdf._encryption, name, getattr(_fallback, name))


def test_an_encrypted_pdf_that_needs_a_password_says_so(tmp_path):
    with pytest.raises(Unsupported) as info:
        load(encrypted(tmp_path, "RC4-128", user_password="secret"))
    assert str(info.value) == "encrypted PDF: it needs a password"


@needs_cryptography
@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_an_aes_pdf_with_an_empty_user_password_opens(tmp_path, algorithm):
    assert "copper lantern" in load(encrypted(tmp_path, algorithm)).text


@needs_cryptography
@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])  # fails at decrypt / at extraction
def test_an_aes_pdf_without_cryptography_says_the_package_is_missing(
    tmp_path, monkeypatch, algorithm
):
    path = encrypted(tmp_path, algorithm)
    without_cryptography(monkeypatch)
    with pytest.raises(Unsupported) as info:
        load(path)
    message = str(info.value)
    assert message.startswith("encrypted PDF (AES)") and "`cryptography`" in message
    assert "not installed" in message and "scanned" not in message and "\n" not in message


def test_a_missing_package_while_decrypting_is_named(tmp_path, monkeypatch):
    """However pypdf reports it: a DependencyError that names cryptography."""
    import pypdf

    path = encrypted(tmp_path, "RC4-128")

    def decrypt(self, password):
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(pypdf.PdfReader, "decrypt", decrypt)
    with pytest.raises(Unsupported, match=r"needs the Python package `cryptography`"):
        load(path)


def test_a_page_that_fails_is_reported_and_the_other_pages_are_kept(monkeypatch, caplog):
    extract = PageObject.extract_text

    def flaky(self, *args, **kwargs):
        if self.page_number == 1:  # the second page
            raise ValueError("bad glyph\ntable")
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        doc = load(FIXTURES / "sample.pdf", source="corpus/sample.pdf")
    assert "lighthouse keeper" in doc.text and "copper lantern" not in doc.text
    assert [s.page for s in doc.sections] == [1]
    assert doc.warnings == ("1 of 2 pages failed to extract: page 2: bad glyph table",)
    (record,) = [r for r in caplog.records if r.name.startswith("qa.ingest")]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "corpus/sample.pdf: page 2 failed to extract: bad glyph table"


def test_a_pdf_whose_pages_all_fail_says_why(monkeypatch):
    def broken(self, *args, **kwargs):
        raise KeyError("/Font")

    monkeypatch.setattr(PageObject, "extract_text", broken)
    with pytest.raises(Unsupported) as info:
        load(FIXTURES / "sample.pdf")
    assert str(info.value) == (
        "no text extracted from the PDF: 2 of 2 pages failed to extract: page 1: '/Font' "
        "(and 1 more)"
    )


def test_a_pdf_without_a_text_layer_says_scanned(tmp_path):
    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=200, height=200)
    with pytest.raises(Unsupported) as info:
        load(write(writer, tmp_path / "scan.pdf"))
    assert str(info.value) == "PDF has no text layer (scanned?)"


def test_a_whole_pdf_has_no_warnings():
    assert load(FIXTURES / "sample.pdf").warnings == ()


def test_a_failed_page_is_in_the_index_report_and_the_cli_summary(monkeypatch, tmp_path, capsys):
    import shutil

    from fakes import FakeEmbedder

    from qa import cli

    extract = PageObject.extract_text

    def flaky(self, *args, **kwargs):
        if self.page_number == 1:
            raise ValueError("bad glyph table")
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: FakeEmbedder())
    (tmp_path / "docs").mkdir()
    shutil.copy(FIXTURES / "sample.pdf", tmp_path / "docs" / "sample.pdf")
    assert cli.main(["index", str(tmp_path / "docs"), "--index", str(tmp_path / "ix")]) == 0
    out = capsys.readouterr().out
    assert "warning docs/sample.pdf: 1 of 2 pages failed to extract: page 2" in out
