"""The browser chat (Gradio)."""
