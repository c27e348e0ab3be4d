"""Reading documents: walking folders within limits, one loader per format, sentences, chunking."""
