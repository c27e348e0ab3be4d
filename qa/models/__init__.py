"""The models: the embedder, the generator (llama.cpp), and unpacking model files."""
