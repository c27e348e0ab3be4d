"""qa.models.generator: model loading errors (no llama.cpp traceback ever), and the real default model."""

from __future__ import annotations

import re

import pytest

from qa.config import Settings
from qa.errors import ModelNotFound
from qa.models.generator import Generator, LlamaGenerator, Message, load_generator


def test_a_missing_model_names_the_fix(tmp_path):
    with pytest.raises(ModelNotFound, match=r"not found: run `make model`, or pass --model PATH"):
        load_generator(tmp_path / "missing.gguf")


def test_a_file_that_is_not_gguf_is_refused_before_llama_cpp(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"this is not a model" * 100)
    with pytest.raises(ModelNotFound, match="not a GGUF model file.*make model"):
        load_generator(bad)


def test_a_truncated_gguf_raises_model_not_found(tmp_path):
    real = Settings().model
    if not real.is_file():
        pytest.skip("default model not installed (make model)")
    broken = tmp_path / "broken.gguf"
    with open(real, "rb") as f:
        broken.write_bytes(f.read(1 << 20))  # a valid header, then nothing
    with pytest.raises(ModelNotFound, match="cannot load model.*make model"):
        load_generator(broken)


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFound):
        load_generator(tmp_path)


@pytest.fixture(scope="module")
def real_generator() -> LlamaGenerator:
    path = Settings().model
    if not path.is_file():
        pytest.skip("default model not installed (make model)")
    return load_generator(path, 2048, threads=1)


@pytest.mark.slow
def test_real_model_is_loaded_once_and_uses_its_chat_template(real_generator):
    assert isinstance(real_generator, Generator)
    assert load_generator(Settings().model, 2048) is real_generator
    assert real_generator.has_chat_template
    prompt = real_generator.render([Message("system", "Be brief."), Message("user", "Hi")])
    assert "<|im_start|>user\nHi<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert real_generator.count_tokens(prompt) < 30


@pytest.mark.slow
def test_real_model_streams_deterministically(real_generator):
    prompt = real_generator.render([Message("user", "Name three colours.")])
    first = list(real_generator.stream(prompt, max_tokens=12))
    second = list(real_generator.stream(prompt, max_tokens=12))
    assert len(first) > 1 and first == second
    assert "".join(first).strip()


@pytest.mark.slow
def test_real_model_grammar_constrains_the_output(real_generator):
    from qa.answer.prompting import answer_grammar

    prompt = real_generator.render(
        [Message("user", "Sources:\n[1] Snow is white.\n\nQuestion: What colour is snow?")]
    )
    text = "".join(real_generator.stream(prompt, max_tokens=120, grammar=answer_grammar(1)))
    assert text == "The documents don't say." or re.fullmatch(r"\w[^\[\]\n]+ \[1\]\.", text)


@pytest.mark.slow
def test_real_prompt_cache_is_bounded_and_reused(real_generator):
    from qa.models.generator import load_generator as load

    gen = load(Settings().model, 1024, threads=1)  # its own instance: a cache of its own
    gen.reset()
    prompts = [
        gen.render([Message("user", f"Say something about the number {i}, briefly.")])
        for i in range(4)
    ]
    cold = [list(gen.stream(p, max_tokens=8)) for p in prompts]
    states = list(gen.cache.cache_state.values())
    assert states, "prompts are cached"
    # llama-cpp-python would keep n_tokens x n_vocab logits per state (~5 MB each here)
    assert all(s.scores.shape[0] <= 1 for s in states)
    assert gen.cache.cache_size == sum(
        s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes for s in states
    )
    assert gen.cache.cache_size <= gen.cache.capacity_bytes
    # a prompt seen before resumes from its cached state and decodes the same tokens
    assert list(gen.stream(prompts[0], max_tokens=8)) == cold[0]
