"""`python -m qa.train reader|eval ...`: train the reader, or measure it on the test part.

`add_arguments(parser)` and `main(argv)` let the `qa` CLI offer the same as `qa train ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa import config


def _reader_folder(parser: argparse.ArgumentParser, flag: str) -> None:
    """The option naming the trained reader a subcommand works on."""
    parser.add_argument(
        flag, type=Path, default=None, help="reader folder (default: models/reader)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands `reader` (train and export), `combiner` (fit the evidence scorer) and
    `eval` (test-part figures)."""
    from qa.train.reader import TrainConfig

    d = TrainConfig()
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser(
        "reader", help="fine-tune the reader and export it (about 45 min on 2 cores)"
    )
    r.add_argument("--out", type=Path, default=d.out, help="output folder (default: models/reader)")
    r.add_argument("--limit", type=int, default=None, help="train on only N examples (smoke run)")
    r.add_argument("--epochs", type=float, default=d.epochs)
    r.add_argument("--squad-questions", type=int, default=d.squad_questions)
    r.add_argument("--support-questions", type=int, default=d.support_questions)
    r.add_argument(
        "--yes-no-share",
        type=float,
        default=d.yes_no_share,
        help="share of SQuAD questions also asked as yes/no questions",
    )
    r.add_argument("--window-share", type=float, default=d.window_share)
    r.add_argument("--clapnq-repeat", type=int, default=d.clapnq_repeat)
    r.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast (faster on CPUs with AVX512-BF16)"
    )
    r.add_argument("--batch-size", type=int, default=d.batch_size)
    r.add_argument("--max-length", type=int, default=d.max_length)
    r.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="train for M minutes (the learning-rate schedule follows the clock)",
    )
    r.add_argument("--calib-questions", type=int, default=d.calib_questions)
    r.add_argument("--seed", type=int, default=d.seed)
    r.add_argument("--init", type=Path, default=None, help="continue from this reader folder")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    c = sub.add_parser(
        "combiner",
        help="fit the evidence scorer over the reader's signals (combiner.json beside it; "
        "about 15 min on 2 cores)",
    )
    _reader_folder(c, "--reader")
    c.add_argument("--squad-questions", type=int, default=400)
    c.add_argument("--clapnq-questions", type=int, default=None)
    c.add_argument("--calib-questions", type=int, default=200)
    c.add_argument("--seed", type=int, default=17)
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    k = sub.add_parser(
        "calibrate",
        help="compute a trained reader's thresholds again on the calib slice (the last step "
        "of `reader`; its weights are unchanged)",
    )
    _reader_folder(k, "--model")
    k.add_argument("--calib-questions", type=int, default=d.calib_questions)
    k.add_argument("--quiet", action="store_true")
    e = sub.add_parser("eval", help="measure a reader on the test part of the split")
    _reader_folder(e, "--model")
    e.add_argument("--squad-questions", type=int, default=1000, help="SQuAD test questions sampled")
    e.add_argument(
        "--quantize", action="store_true", help="int8 dynamic quantization of Linear layers"
    )
    e.add_argument("--write", action="store_true", help="record the figures in the manifest")
    e.add_argument("--quiet", action="store_true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2 if config._cpu_count() >= 2 else 1)
    if args.what == "reader":
        from qa.train.reader import TrainConfig, train

        cfg = TrainConfig(
            out=args.out,
            limit=args.limit,
            epochs=args.epochs,
            squad_questions=args.squad_questions,
            support_questions=args.support_questions,
            yes_no_share=args.yes_no_share,
            window_share=args.window_share,
            clapnq_repeat=args.clapnq_repeat,
            bf16=args.bf16,
            batch_size=args.batch_size,
            max_length=args.max_length,
            max_minutes=args.max_minutes,
            calib_questions=args.calib_questions,
            seed=args.seed,
            init_from=args.init,
        )
        manifest = train(cfg, progress=not args.quiet)
        print(
            json.dumps(
                {
                    "out": str(cfg.out),
                    "thresholds": manifest["thresholds"],
                    "calibration_figures": manifest["calibration_figures"],
                },
                indent=2,
            )
        )
        return 0
    if args.what == "combiner":
        from qa.train.combiner import CombinerConfig
        from qa.train.combiner import train as fit

        record = fit(
            CombinerConfig(
                reader=args.reader,
                squad_questions=args.squad_questions,
                clapnq_questions=args.clapnq_questions,
                calib_questions=args.calib_questions,
                seed=args.seed,
                progress=not args.quiet,
            )
        )
        keys = ("thresholds", "calibration_figures", "seconds")
        print(json.dumps({k: record[k] for k in keys}, indent=2))
        return 0
    from qa.models.reader import default_reader_path
    from qa.train.evaluate import calibrate, test_report
    from qa.train.reader import update_manifest

    folder = args.model or default_reader_path()
    if args.what == "calibrate":
        thresholds, calibration = calibrate(folder, args.calib_questions, progress=not args.quiet)
        update_manifest(folder, thresholds=thresholds, calibration_figures=calibration)
        print(json.dumps({"thresholds": thresholds, "calibration_figures": calibration}, indent=2))
        return 0
    figures = test_report(
        folder,
        args.squad_questions,
        progress=not args.quiet,
        quantize=True if args.quantize else None,
    )
    print(json.dumps(figures, indent=2))
    if args.write:
        key = "test_figures_int8" if args.quantize else "test_figures"
        update_manifest(folder, **{key: figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
