"""One module per document format; each has `load(path, source, data) -> LoadedDocument`."""
