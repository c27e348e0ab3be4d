"""Exporting a local sentence-transformers model to ONNX for the `onnx` embedder backend.

The export reads only the installed model directory (never the network): torch traces the
transformer into `model.onnx`, ONNX Runtime's transformer optimizer fuses attention, layer
norm and GELU, and `quantize_dynamic` makes `model_qint8.onnx` (int8 weights, activations
quantized on the fly: no calibration data). Pooling and normalization stay outside the graph
(numpy, in `qa.models.onnx_embedder`), so the graph is the transformer alone.

The files go in a cache folder, `models/onnx/<model>-<key>/`, keyed by the model's files (a
changed model is exported anew). `make setup` exports the default model; any other model is
exported on first use (about half a minute; needs torch, which the serving path does not).

    python -m qa.models.onnx_export [MODEL]    # export (or reuse) and print the folder
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from qa import config
from qa.errors import ModelNotFound
from qa.models.files import sha256

EXPORT_FORMAT = "qa-onnx-embedder"
EXPORT_VERSION = 2  # 2: int8 per channel with reduced range
FP32 = "model.onnx"
INT8 = "model_qint8.onnx"
META = "export.json"
OPSET = 17
# what the export key covers: the files that shape the network, its tokenizer and pooling
KEY_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)


def cache_root() -> Path:
    """`models/onnx/` of the project checkout (where `models/` holds the other models)."""
    return config.PROJECT_ROOT / "models" / "onnx"


def export_key(model_dir: Path) -> str:
    """A short hash of the model's files (names, sizes, modification times) and of this
    exporter's version: it changes when the model or the export recipe does."""
    h = hashlib.sha256(f"{EXPORT_FORMAT}:{EXPORT_VERSION}:{OPSET}".encode())
    for name in KEY_FILES:
        path = model_dir / name
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:12]


def export_dir(model_dir: Path, root: Path | None = None) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_dir.name)[:40]
    return (root or cache_root()) / f"{slug}-{export_key(model_dir)}"


def read_meta(folder: Path) -> dict | None:
    """The export's metadata if the folder holds a finished export, else None."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        return None
    if not all((folder / meta["files"][k]).is_file() for k in ("fp32", "int8", "tokenizer")):
        return None
    return meta


def model_config(model_dir: Path) -> dict:
    """Pooling, normalization and length of a sentence-transformers directory, checked to be
    what the ONNX backend reproduces (Transformer -> mean or CLS pooling -> optional Normalize)."""

    def read(name: str, default=None):
        try:
            return json.loads((model_dir / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            raise ModelNotFound(f"cannot read {model_dir / name}: {exc}") from exc

    modules = read("modules.json", [])
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds and (
        kinds[0] != "Transformer" or any(k not in ("Pooling", "Normalize") for k in kinds[1:])
    ):
        raise ModelNotFound(
            f"the onnx backend supports Transformer + Pooling (+ Normalize) models; {model_dir} "
            f"has {' + '.join(kinds)}: use QA_EMBED_BACKEND=torch"
        )
    pooling_dir = next(
        (m.get("path") for m in modules if m.get("type", "").endswith("Pooling")), None
    )
    pooling = read(f"{pooling_dir}/config.json", {}) if pooling_dir else {}
    if pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    elif pooling.get("pooling_mode_mean_tokens", True):
        mode = "mean"
    else:
        raise ModelNotFound(
            f"the onnx backend supports mean or CLS pooling; {model_dir} uses another: "
            "use QA_EMBED_BACKEND=torch"
        )
    hf = read("config.json", {})
    st = read("sentence_bert_config.json", {})
    tok = read("tokenizer_config.json", {})
    limits = [hf.get("max_position_embeddings", 512)]
    if isinstance(tok.get("model_max_length"), int) and tok["model_max_length"] < 10**6:
        limits.append(tok["model_max_length"])
    max_seq = st.get("max_seq_length") or min(limits)
    if not (model_dir / "tokenizer.json").is_file():
        raise ModelNotFound(f"{model_dir} has no tokenizer.json: use QA_EMBED_BACKEND=torch")
    return {
        "pooling": mode,
        "normalize": "Normalize" in kinds,
        "max_seq_length": int(max_seq),
        "dimension": int(hf.get("hidden_size", 0)),
        "num_heads": int(hf.get("num_attention_heads", 0)),
        "do_lower_case": bool(st.get("do_lower_case", False)),
    }


def ensure_export(model_dir: Path, root: Path | None = None, log=None) -> Path:
    """The folder holding the ONNX export of `model_dir`, exporting it first if needed (one
    process at a time; a run killed midway leaves no half export behind)."""
    return export_once(
        export_dir(model_dir, root),
        lambda folder: read_meta(folder) is not None,
        lambda staging: export(model_dir, staging),
        model_dir.name,
        log,
    )


def export_once(folder: Path, done, make, what: str, log=None) -> Path:
    """`folder`, made first by `make(staging)` unless `done(folder)`: one process at a time
    (a file lock beside it, `done` asked again once it is held), into a staging folder renamed
    into place, so a run killed midway leaves no half export behind. The embedder's and the
    reader's exports both go through here."""
    from filelock import FileLock

    if done(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if done(folder):
            return folder  # another process exported it meanwhile
        if log:
            log(f"exporting {what} to ONNX in {folder} (once) ...")
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        try:
            make(staging)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def trace(module, args, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    """`torch.onnx.export` of `module` called with `args` into `path` (the TorchScript
    exporter at OPSET, inference mode), with these input and output names and dynamic axes."""
    import torch

    with torch.inference_mode():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def cpu_session(path: Path, threads: int | None = None, **options):
    """An ONNX Runtime session of the model file `path` on the CPU: `threads` intra-op threads
    (default: the cores), one inter-op thread, errors only in the log; `options` are set on
    its SessionOptions too. What ONNX Runtime raises for a bad file is the caller's to word."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    for name, value in options.items():
        setattr(opts, name, value)
    opts.intra_op_num_threads = threads or config._cpu_count()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export(model_dir: Path, out: Path) -> dict:
    """Export, optimize and quantize `model_dir` into the folder `out`; return the metadata."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelNotFound(
            f"exporting the ONNX embedder needs {exc.name}: run `make setup`"
        ) from None

    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice on pre-processing, not a problem
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing
            return _export(model_dir, out)
    finally:
        root.setLevel(level)


def _export(model_dir: Path, out: Path) -> dict:
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    cfg = model_config(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    raw = out / "raw.onnx"
    bert = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()

    class Encoder(torch.nn.Module):  # keyword arguments: positions differ between versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = Encoder().eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    args = (ids, mask, torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "tokens"}
    trace(model, args, raw, names, ["last_hidden_state"], axes)
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=cfg["num_heads"],
        hidden_size=cfg["dimension"],
        opt_level=1,
    )
    optimized.save_model_to_file(str(out / FP32))
    raw.unlink()
    quantize_dynamic(
        str(out / FP32),
        str(out / INT8),
        weight_type=QuantType.QInt8,
        # Measured on SQuAD paragraphs (cosine to fp32): per-tensor int8 0.90 at worst (u8s8
        # saturates on AVX2 without VNNI), per channel 0.986, per channel with 7-bit reduced
        # range 0.990 (mean 0.993): that one.
        per_channel=True,
        reduce_range=True,
        # the fused ops are outside shape inference: their outputs are float
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    shutil.copyfile(model_dir / "tokenizer.json", out / "tokenizer.json")
    meta = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "source": str(model_dir),
        "key": export_key(model_dir),
        "files": {"fp32": FP32, "int8": INT8, "tokenizer": "tokenizer.json"},
        "sha256": {k: sha256(out / k) for k in (FP32, INT8)},
        **cfg,
        "versions": {
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": OPSET,
        },
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    from qa.errors import QAError
    from qa.models.embedder import resolve_model_dir

    argv = sys.argv[1:] if argv is None else argv
    model = argv[0] if argv else config.DEFAULT_EMBEDDER

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    try:
        print(ensure_export(resolve_model_dir(model), log=log))
        if not argv:  # `make onnx`: the shipped reader too, so no `qa ask` exports it
            from qa.models.onnx_reader import export_reader
            from qa.models.reader import default_reader_path

            if (default_reader_path() / "manifest.json").is_file():
                print(export_reader(default_reader_path(), log=log))
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
