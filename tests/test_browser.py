"""End to end in a real browser: Debian's Chromium driven by Playwright for Python.

`python app.py` runs as a subprocess on a free port over a copy of the sample corpus, with the
real embedder and the real default model (SmolLM2). The browser asks the Ford question,
watches the answer stream in, opens the citation and finds the highlighted "completely
false", copies the answer, stops a second answer, uploads a new document (with an HTML
payload in it) and asks a question only that document answers, and checks that the page
never requested anything from anywhere but the app. Screenshots go to the test's temporary
folder; set QA_SCREENSHOT_DIR=docs to refresh docs/screenshot-chat.png.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, FORD_QUESTION

from qa.config import PROJECT_ROOT, Settings
from qa.index.core import Index

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# read at import: the autouse fixture in conftest.py removes QA_* variables from each test
SCREENSHOT_DIR = os.environ.get("QA_SCREENSHOT_DIR")
ANSWER_TIMEOUT_MS = 600_000  # two shared CPU cores: a model answer can take minutes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
]

NEW_DOC = (
    "Quentin Harbor hosts the Zorblat lantern festival every March. "
    "The Zorblat lantern festival was founded in 1887 by a sailor named Ada Pellworth. "
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> '
    "Visitors float paper lanterns on the harbor.\n"
)

# Records, in the page, whether the answer was seen streaming (text growing before the end).
WATCH_STREAMING = """
() => {
  window.__qaStreamed = 0;
  const root = document.querySelector('#qa-chat');
  new MutationObserver(() => {
    for (const turn of root.querySelectorAll('.qa-turn[data-status=streaming] .qa-text')) {
      window.__qaStreamed = Math.max(window.__qaStreamed, turn.textContent.trim().length);
    }
  }).observe(root, {subtree: true, childList: true, characterData: true});
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(root: Path, index: Path, **env: str) -> Iterator[str]:
    """`python app.py` over `index` on a free port, run in `root` (its output in
    root/app.log) with no QA_* variables but `env`: yields its URL once it answers."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | env
    with open(root / "app.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port)]
            + ["--index", str(index)],
            cwd=root,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the app did not start:\n" + (root / "app.log").read_text()[-3000:])
            time.sleep(0.5)
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-app")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.load(index_dir=root / "index")
    Index.build([root / "corpus"], root / "index", settings=settings).close()
    with running_app(root, root / "index", QA_MAX_UPLOAD_MB="1") as url:
        yield url, root


def launch(p):
    """Debian's Chromium (never a downloaded browser), headless, with no background traffic."""
    return p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)


def wait_status(page, turn: int, statuses: str, timeout=ANSWER_TIMEOUT_MS):
    selector = ", ".join(
        f"#qa-chat .qa-turn:nth-child({turn})[data-status={s}]" for s in statuses.split()
    )
    page.wait_for_selector(selector, timeout=timeout)
    return page.locator(f"#qa-chat .qa-turn:nth-child({turn})")


def ask(page, question: str) -> None:
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")


def test_chat_in_a_real_browser(app_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, root = app_url
    host = url.split("/")[2]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    requests: list[str] = []
    console_errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        page.evaluate(WATCH_STREAMING)

        # 1. The Ford question, with the real model (chosen in the settings; the default mode
        # is extractive): streamed, cited, highlighted.
        settings = page.locator("#qa-settings").get_by_text("Settings").first
        settings.click()
        assert page.get_by_label("Extractive", exact=True).is_checked()
        page.get_by_label("Model", exact=True).check()
        settings.click()
        ask(page, FORD_QUESTION)
        turn = wait_status(page, 1, "answered refused error")
        assert turn.get_attribute("data-status") == "answered", turn.inner_text()
        assert page.evaluate("window.__qaStreamed") > 0, "the answer did not stream"
        assert page.locator("#qa-question textarea").input_value() == ""
        cite = turn.locator(".qa-cite").first
        assert cite.is_visible()
        target = cite.get_attribute("data-target")
        source = page.locator(f"#{target}")
        assert not source.locator(".qa-passage").is_visible()
        cite.click()
        page.wait_for_function(f"document.getElementById('{target}').open")
        passage = source.locator(".qa-passage")
        assert passage.is_visible()
        highlighted = passage.locator("mark.qa-hl")
        assert "completely false" in highlighted.inner_text()
        assert highlighted.evaluate("e => getComputedStyle(e).backgroundColor") not in (
            "rgba(0, 0, 0, 0)",
            "transparent",
        )
        assert "ford-xiaomi-joint-venture.txt" in source.locator("summary").inner_text()
        page.wait_for_timeout(1800)  # let the highlight flash fade before the screenshot
        page.screenshot(
            path=shots / "screenshot-chat.png", clip={"x": 0, "y": 0, "width": 1280, "height": 540}
        )
        if SCREENSHOT_DIR:
            folder = Path(SCREENSHOT_DIR)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(shots / "screenshot-chat.png", folder / "screenshot-chat.png")

        # 2. Copy answer.
        copy = turn.locator(".qa-copy")
        copy.click()
        page.wait_for_function("document.querySelector('.qa-copy').textContent === 'Copied'")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "Sources:" in copied and "completely false" in copied

        # 3. A follow-up, stopped while it streams.
        ask(page, "What did Farley say about the Xiaomi he drives?")
        page.wait_for_function(
            "document.querySelector('#qa-chat .qa-turn:nth-child(2)[data-status=streaming]')"
            " && document.querySelector('#qa-chat .qa-turn:nth-child(2) .qa-text')"
            ".textContent.trim().length > 0",
            timeout=ANSWER_TIMEOUT_MS,
        )
        page.locator("#qa-stop").click()
        stopped = wait_status(page, 2, "stopped answered refused", timeout=120_000)
        assert stopped.get_attribute("data-status") == "stopped"
        assert page.locator("#qa-chat .qa-turn").count() == 2

        # 4. Documents: upload a new file (plus an unsupported and an oversized one).
        page.get_by_role("tab", name="Documents").click()
        new_doc = tmp_path / "zorblat festival.txt"
        new_doc.write_text(NEW_DOC, encoding="utf-8")
        odd = tmp_path / "notes.xyz"
        odd.write_text("not a document type")
        page.set_input_files("#qa-upload input[type=file]", [str(new_doc), str(odd)])
        report = page.locator("#qa-report")
        report.locator("text=zorblat festival.txt").wait_for(timeout=120_000)
        text = report.inner_text()
        assert "indexed" in text and "unsupported file type .xyz" in text
        page.locator("#qa-docs").locator("text=uploads/zorblat festival.txt").wait_for()
        assert (root / "uploads" / "zorblat festival.txt").is_file()
        page.screenshot(path=shots / "screenshot-documents.png")
        big = tmp_path / "big.txt"
        big.write_text("words " * 400_000)  # 2.4 MB; the app was started with a 1 MB cap
        page.set_input_files("#qa-upload input[type=file]", [str(big)])
        # Gradio refuses it before it reaches the server (launched with max_file_size)
        page.get_by_text("exceed the maximum allowed size", exact=False).first.wait_for(
            timeout=30_000
        )
        assert not (root / "uploads" / "big.txt").exists()

        # 5. Ask what only the new document answers (extractive mode, from the settings).
        page.get_by_role("tab", name="Chat").click()
        settings.click()
        page.get_by_label("Extractive", exact=True).check()
        ask(page, "Who founded the Zorblat lantern festival?")
        turn = wait_status(page, 3, "answered refused error")
        assert turn.get_attribute("data-status") == "answered", turn.inner_text()
        assert "Ada Pellworth" in turn.locator(".qa-text").inner_text()
        turn.locator(".qa-cite").first.click()
        target = turn.locator(".qa-cite").first.get_attribute("data-target")
        page.wait_for_function(f"document.getElementById('{target}').open")
        source = page.locator(f"#{target}")
        assert "uploads/zorblat festival.txt" in source.locator("summary").inner_text()
        # the document's markup is shown as text, never run
        assert '<img src=x onerror="window.__pwned=1">' in source.inner_text()
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#qa-sources img, #qa-chat img, #qa-sources script").count() == 0
        page.screenshot(path=shots / "screenshot-upload.png")

        # 6. An empty question does nothing; clear chat empties it.
        ask(page, "   ")
        page.wait_for_timeout(1000)
        assert page.locator("#qa-chat .qa-turn").count() == 3
        page.locator("#qa-clear").click()
        page.wait_for_function("document.querySelectorAll('#qa-chat .qa-turn').length === 0")
        assert "Cited passages appear here" in page.locator("#qa-sources").inner_text()
        browser.close()

    outside = [u for u in requests if not u.startswith(("data:", "blob:")) and host not in u]
    assert requests and not outside, outside
    assert all((shots / n).is_file() for n in ("screenshot-chat.png", "screenshot-upload.png"))
