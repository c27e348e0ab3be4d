"""The browser chat: a Gradio app over one engine (an index and its local models).

    python app.py                 # http://127.0.0.1:7860
    qa serve --port 8080

`build_app(settings)` makes the Gradio Blocks; `serve(...)` builds and runs it. The page
(`qa.web.layout`) only lays out; its handlers (`qa.web.chat.ChatApp`) call the `Engine`'s
public methods and hold no retrieval or answer logic. One engine serves every browser
session; each session keeps its own conversation (a `gr.State`).

Safety: every text from a document or the model is HTML-escaped (`qa.web.render`); nothing
is fetched from outside (system fonts, no analytics, no share links); serving on an address
other than loopback needs a password (`auth="user:password"` or `QA_AUTH`) unless
`insecure=True` (`qa.web.security`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.engine import Engine
from qa.errors import BadInput
from qa.web.assets import CSS
from qa.web.chat import ChatApp
from qa.web.security import check_exposure, is_loopback, parse_auth

__all__ = ["ChatApp", "build_app", "check_exposure", "is_loopback", "parse_auth", "serve"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def launch_options() -> dict[str, Any]:
    """`launch()` arguments every run of the app uses: local fonts, our CSS, no telemetry."""
    import gradio as gr

    theme = gr.themes.Default(
        font=("ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=("ui-monospace", "Consolas", "monospace"),
    )
    return {"theme": theme, "css": CSS, "ssr_mode": False, "enable_monitoring": False}


def build_app(settings: Settings | None = None, *, engine: Engine | None = None, **options):
    """The Gradio Blocks for `settings` (index and model), or for `engine`; `options` go
    to `ChatApp`."""
    engine = engine or Engine(settings or Settings.load(), create=True)
    return ChatApp(engine, **options).build()


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    index_dir: str | Path | None = None,
    model: str | Path | None = None,
    auth: str | None = None,
    insecure: bool = False,
    open_browser: bool = False,
    api_key: str | None = None,
    *,
    settings: Settings | None = None,
    block: bool = True,
    warm: bool = True,
    quiet: bool = False,
    **options,
):
    """Run the app until interrupted (or, with `block=False`, return the launched Blocks).
    The OpenAI-compatible API (`qa.api.openai`) is served under `/v1` on the same host and
    port, over the same engine; it needs `Authorization: Bearer KEY` when `api_key` (or
    `QA_API_KEY`) is set. The chat's login does not open the API, nor the key the chat.

    Raises `BadInput` for a non-loopback `host` without `auth` (or `QA_AUTH`) or without
    `api_key` (or `QA_API_KEY`) unless `insecure`, and for a port that is in use."""
    from starlette.routing import Mount

    from qa.api.auth import check_api_exposure
    from qa.api.openai import create_app

    settings = (settings or Settings.load()).with_(index_dir=index_dir, model=model)
    credentials = check_exposure(host, auth, insecure, settings)
    key = check_api_exposure(host, api_key, insecure, settings)
    if model is not None and not Path(model).is_file():
        from qa.errors import ModelNotFound

        raise ModelNotFound(f"model file {model} not found: pass --model PATH to a GGUF file")
    app = build_app(settings, **options)
    ui: ChatApp = app.qa
    api = create_app(
        ui.engine, api_key=key, upload_dir=ui.upload_dir, max_upload_bytes=ui.max_upload_bytes
    )
    if warm:
        threading.Thread(target=_warm_up, args=(app.qa,), daemon=True).start()
    try:
        app.launch(
            server_name=host,
            server_port=int(port),
            auth=credentials,
            inbrowser=open_browser,
            share=False,
            prevent_thread_lock=True,
            show_error=False,
            quiet=True,  # our own one line below, not Gradio's hint about share links
            max_file_size=app.qa.max_upload_bytes,
            # the API's routes come first, so no route of Gradio's shadows /v1; they have
            # their own errors and key, and Gradio's login does not apply to them
            app_kwargs={"routes": [Mount("/v1", app=api)]},
            **launch_options(),
        )
    except OSError as exc:
        raise BadInput(f"cannot serve on {host}:{port} ({exc}): pass another --port") from None
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(
            f"qa: the chat is at http://{shown}:{port}/ and the API at http://{shown}:{port}/v1"
            " (Ctrl-C stops them)",
            flush=True,
        )
    if not block:
        return app
    try:
        while True:
            time.sleep(0.5)  # interruptible by Ctrl-C, unlike a bare Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return None


def _warm_up(qa_app: ChatApp) -> None:
    """Load the embedder and the default model in the background, so the first question
    does not wait for them. A failure is logged; the first request reports it properly."""
    try:
        qa_app.engine.warm_up("llm" if qa_app.settings.model.is_file() else "extractive")
    except Exception as exc:
        log.warning("warm-up failed (the first question will say why): %s", exc)
