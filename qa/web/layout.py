"""The page: the Gradio Blocks of the chat and documents tabs, wired to a `ChatApp`'s
handlers (which hold all behaviour; this module only lays out and connects)."""

from __future__ import annotations

from qa.web.assets import CHAT_JS
from qa.web.render import sources_html, transcript_html

MAX_K = 20  # the slider's top; the engine accepts up to qa.config.K_MAX
MAX_TEMPERATURE = 1.5  # the slider's top; above it a small model's answers are noise
MODES = {"Model": "llm", "Extractive": "extractive"}
CHAT_CONCURRENCY = 2  # answers in flight at once (generation itself is one at a time)


def build(ui):
    """The Gradio Blocks of `ui` (a `ChatApp`), not launched."""
    import gradio as gr

    models = list(ui.models())
    default_model = ui.default_model_name()
    if default_model not in models and models:
        default_model = models[0]

    def session_of(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or ""

    def on_ask(question, turns, k, mode, model_name, temperature, request: gr.Request):
        yield from ui.respond(
            question, turns, k, mode, model_name, temperature, session_of(request)
        )

    def on_stop(request: gr.Request):
        ui.stop(session_of(request))

    def on_clear(request: gr.Request):
        return ui.clear(session_of(request))

    for fn in (on_ask, on_stop, on_clear):  # real classes: this module's annotations are str
        fn.__annotations__["request"] = gr.Request

    def doc_outputs():
        choices = ui.document_sources()
        return ui.documents_view(), gr.Dropdown(choices=choices, value=None)

    def on_upload(files, progress=gr.Progress()):  # noqa: B008
        report = ui.upload(files, progress)
        return (report, *doc_outputs(), None)

    def on_delete(source):
        return (ui.delete(source), *doc_outputs())

    def on_rebuild(progress=gr.Progress()):  # noqa: B008
        return (ui.rebuild(progress), *doc_outputs())

    with gr.Blocks(title="qa: ask your documents", analytics_enabled=False) as app:
        turns = gr.State([])
        gr.Markdown(
            "### qa: ask your documents\nAnswers come only from the indexed documents, "
            "with citations you can check. Everything runs on this machine."
        )
        with gr.Tab("Chat", id="chat"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=360):
                    chat = gr.HTML(
                        transcript_html([]),
                        elem_id="qa-chat",
                        js_on_load=CHAT_JS,
                        autoscroll=True,
                        max_height=620,
                        padding=True,
                    )
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="Ask a question about your documents, then press Enter",
                        elem_id="qa-question",
                        lines=1,
                        max_lines=6,
                        autofocus=True,
                    )
                    with gr.Row():
                        ask_btn = gr.Button("Ask", variant="primary", elem_id="qa-ask")
                        stop_btn = gr.Button("Stop", elem_id="qa-stop")
                        clear_btn = gr.Button("Clear chat", elem_id="qa-clear")
                with gr.Column(scale=2, min_width=300):
                    sources = gr.HTML(
                        sources_html([]),
                        elem_id="qa-sources",
                        js_on_load=None,
                        max_height=720,
                        padding=True,
                    )
            with gr.Accordion("Settings", open=False, elem_id="qa-settings"), gr.Row():
                k = gr.Slider(1, MAX_K, value=ui.settings.k, step=1, label="Passages (top-k)")
                mode = gr.Radio(
                    list(MODES),
                    value=ui.default_mode,
                    label="Answer mode",
                    info="Model: the local language model writes the answer. "
                    "Extractive: quote the best sentence, no model.",
                    elem_id="qa-mode",
                )
                model_name = gr.Dropdown(
                    models,
                    value=default_model if models else None,
                    label="Model file (models/)",
                    elem_id="qa-model",
                )
                temperature = gr.Slider(
                    0.0,
                    MAX_TEMPERATURE,
                    value=ui.settings.temperature,
                    step=0.05,
                    label="Temperature",
                )
        with gr.Tab("Documents", id="documents"):
            # no file_types: an unsupported file gets its reason in the report, not a
            # browser-side refusal; the list of formats is beside the drop zone
            upload = gr.File(
                label=f"Add documents (up to {ui.max_upload_bytes / 1e6:.0f} MB each)",
                file_count="multiple",
                type="filepath",
                elem_id="qa-upload",
            )
            gr.HTML(ui.formats_view(), elem_id="qa-formats", padding=False)
            report = gr.HTML("", elem_id="qa-report")
            docs = gr.HTML("", elem_id="qa-docs")
            with gr.Row():
                doc_choice = gr.Dropdown(
                    ui.document_sources(),
                    value=None,
                    label="Document",
                    elem_id="qa-doc-choice",
                    scale=3,
                )
                delete_btn = gr.Button("Delete document", variant="stop", elem_id="qa-delete")
                rebuild_btn = gr.Button("Rebuild index", elem_id="qa-rebuild")

        ask_inputs = [question, turns, k, mode, model_name, temperature]
        ask_outputs = [question, turns, chat, sources]
        gr.on(
            [question.submit, ask_btn.click],
            on_ask,
            ask_inputs,
            ask_outputs,
            api_name="ask",
            concurrency_limit=CHAT_CONCURRENCY,
            concurrency_id="chat",
            show_progress="hidden",
        )
        stop_btn.click(on_stop, None, None, queue=False, api_name="stop")
        clear_btn.click(on_clear, None, ask_outputs, queue=False, api_name="clear")
        upload.upload(
            on_upload,
            [upload],
            [report, docs, doc_choice, upload],
            api_name="upload",
            concurrency_id="documents",
            concurrency_limit=1,
        )
        delete_btn.click(
            on_delete,
            [doc_choice],
            [report, docs, doc_choice],
            api_name="delete",
            concurrency_id="documents",
            concurrency_limit=1,
        )
        rebuild_btn.click(
            on_rebuild,
            None,
            [report, docs, doc_choice],
            api_name="rebuild",
            concurrency_id="documents",
            concurrency_limit=1,
        )
        app.load(doc_outputs, None, [docs, doc_choice], queue=False, api_name=False)
    app.queue(default_concurrency_limit=1)
    app.qa = ui  # the handlers' owner, for tests and `serve`
    return app
