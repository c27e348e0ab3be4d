"""`qa bench ocr`: how well and how fast scanned pages are read. Pages of known English text are
drawn with Pillow (its bundled FreeType font) at a few point sizes at 300 dpi, saved as PNG and
as an image-only PDF, and read back through qa's own loaders (`qa.ingest.formats.image` and
`.pdf`, i.e. pypdfium2 rendering + Tesseract). Figures: the character error rate (edit distance
over the reference's length, whitespace runs counted as one space, case kept) and pages/s.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DPI = 300
SIZES_PT = (4, 6, 8, 12, 16)
FORMATS = ("png", "pdf")
PAGE_TEXT = (
    "The harbour authority met on Tuesday to discuss the new breakwater. Engineers reported "
    "that the concrete blocks, each weighing 42 tonnes, would arrive by barge in early March. "
    "A local fisherman asked whether the works would close the northern channel; the chair "
    "replied that one lane would stay open at all times. The budget of 3.8 million pounds was "
    "approved by seven votes to two. Quick brown foxes jump over lazy dogs near the quay, "
    "while the lighthouse keeper records wind speed, rainfall and visibility every hour."
)


@dataclass(frozen=True)
class OcrCase:
    """One format at one size: the error rate of each page and the seconds it took."""

    format: str
    size_pt: int
    cer: float
    seconds: float
    pages: int


@dataclass(frozen=True)
class OcrResult:
    kind: str = "ocr"
    dpi: int = DPI
    cases: tuple[OcrCase, ...] = ()
    pages_per_second: float = 0.0
    tesseract: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)


def page_image(text: str, size_pt: float, dpi: int = DPI, width_in: float = 8.27):
    """A white A4-wide page with `text` in Pillow's bundled sans-serif at `size_pt` points."""
    from PIL import Image, ImageDraw, ImageFont

    px = max(6, round(size_pt * dpi / 72))
    font = ImageFont.load_default(px)
    width, margin = round(width_in * dpi), round(0.8 * dpi)
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width - 2 * margin:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    step = round(px * 1.45)
    image = Image.new("L", (width, max(round(2 * dpi), 2 * margin + step * len(lines))), 255)
    draw = ImageDraw.Draw(image)
    for i, text_line in enumerate(lines):
        draw.text((margin, margin + i * step), text_line, font=font, fill=0)
    return image


def save_page(image, path: Path) -> Path:
    """`image` as a PNG or as an image-only PDF (no text layer), by `path`'s suffix."""
    if path.suffix == ".pdf":
        image.save(path, "PDF", resolution=DPI)
    else:
        image.save(path, dpi=(DPI, DPI))
    return path


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein distance / len(reference), whitespace normalised."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        current = [i]
        for j, b in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] / len(ref)


def read_page(path: Path) -> str:
    """The text qa's loader for `path` reads (OCR for a PNG and an image-only PDF)."""
    from qa.ingest.loaders import load

    return load(path).text


def bench_ocr(
    workdir: Path | None = None,
    sizes: tuple[int, ...] = SIZES_PT,
    formats: tuple[str, ...] = FORMATS,
    repeats: int = 1,
) -> OcrResult:
    """CER and time per format and size (`repeats` pages each, the median time)."""
    import subprocess

    from qa.ingest import ocr

    ocr.check()
    version = subprocess.run(
        [ocr.tesseract(), "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    cases, total_pages, total_seconds = [], 0, 0.0
    with tempfile.TemporaryDirectory(prefix="qa-bench-ocr-", dir=workdir) as tmp:
        for size in sizes:
            image = page_image(PAGE_TEXT, size)
            for fmt in formats:
                path = save_page(image, Path(tmp) / f"page-{size}pt.{fmt}")
                times, rates = [], []
                for _ in range(max(1, repeats)):
                    t0 = time.perf_counter()
                    text = read_page(path)
                    times.append(time.perf_counter() - t0)
                    rates.append(cer(PAGE_TEXT, text))
                cases.append(
                    OcrCase(fmt, size, statistics.median(rates), statistics.median(times), 1)
                )
                total_pages += len(times)
                total_seconds += sum(times)
    rate = total_pages / total_seconds if total_seconds else 0.0
    return OcrResult(cases=tuple(cases), pages_per_second=rate, tesseract=version)


def format_ocr(result: OcrResult) -> str:
    lines = [
        f"OCR ({result.tesseract}, pages drawn with Pillow at {result.dpi} dpi, "
        "read by qa's loaders)",
        f"{'format':<8}{'size':>6}{'CER':>9}{'s/page':>9}",
    ]
    for c in result.cases:
        lines.append(f"{c.format:<8}{c.size_pt:>4}pt{c.cer:>8.2%}{c.seconds:>9.2f}")
    lines.append(f"pages/s overall: {result.pages_per_second:.2f}")
    return "\n".join(lines)
