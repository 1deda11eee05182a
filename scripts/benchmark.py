"""Benchmark cbam3d's SE, CBAM and BAM against hand-written blocks and the network without attention.

    python scripts/benchmark.py --quick                      # 2-core CPU: (8, 64, 8, 28, 28) blocks, model memory
    python scripts/benchmark.py --device cuda --amp bf16     # the full run on a GPU
    python scripts/benchmark.py --quick --markdown bench.md --json bench.json

See cbam3d/benchmark.py for what is measured and how.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from cbam3d import attention_names
from cbam3d.benchmark import AMP_DTYPES, PRESETS, markdown_table, run, to_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small preset for a few CPU cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="run under autocast in this dtype")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for CPU runs")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=5,
        action="append",
        metavar=("N", "C", "T", "H", "W"),
        help="a block input shape (repeat for several); replaces the preset's",
    )
    parser.add_argument("--dims", type=int, nargs="+", choices=[1, 2, 3])
    parser.add_argument("--blocks", nargs="+", choices=attention_names())
    parser.add_argument("--models", nargs="*", help="networks for models.create_model; none to skip them")
    parser.add_argument("--model-attention", nargs="+", choices=attention_names())
    parser.add_argument("--clip", type=int, nargs=5, metavar=("N", "C", "T", "H", "W"), help="the networks' input")
    parser.add_argument("--repeats", type=int, help="timed repeats per block variant (median reported)")
    parser.add_argument("--model-repeats", type=int, help="timed repeats per network variant; 0 measures memory only")
    parser.add_argument("--warmup", type=int)
    parser.add_argument(
        "--kernel-size", type=int, help="CBAM's spatial kernel, the same for the naive block (default 7)"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    overrides = {
        "block_shapes": [tuple(s) for s in args.shape] if args.shape else None,
        "dims": args.dims,
        "blocks": args.blocks,
        "models": args.models,
        "model_attention": args.model_attention,
        "clip": tuple(args.clip) if args.clip else None,
        "repeats": args.repeats,
        "model_repeats": args.model_repeats,
        "warmup": args.warmup,
        "kernel_size": args.kernel_size,
        "device": args.device,
        "amp": args.amp,
    }
    settings = dataclasses.replace(
        PRESETS["quick" if args.quick else "full"], **{k: v for k, v in overrides.items() if v is not None}
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(settings)
    table = markdown_table(results)
    print(f"\n{table}")
    described = {**dataclasses.asdict(settings), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.markdown:
        args.markdown.write_text(f"Settings: `{json.dumps(described)}`\n\n{table}\n")
    if args.json:
        args.json.write_text(to_json(results, described))
    return table


if __name__ == "__main__":
    main()
