"""Print the parameter / GFLOP table of the video models, optionally writing it into the documentation.

    python scripts/model_table.py                            # every model x attention, markdown to stdout
    python scripts/model_table.py --readme docs/networks.md  # also replace the text between the file's
                                                             # <!-- model-table:start --> and <!-- model-table:end -->
    python scripts/model_table.py --models r3d_18 resnet3d-50 --attention none cbam

GFLOPs are multiply-adds (torchvision's convention), counted with torch.utils.flop_counter on the meta
device; see models/complexity.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cbam3d import attention_names
from cbam3d.models import MODEL_NAMES
from cbam3d.models.complexity import CLIP_SHAPE, markdown_table, measure_models, replace_between_markers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES, metavar="NAME")
    parser.add_argument(
        "--attention", nargs="+", default=["none", *attention_names()], choices=["none", *attention_names()]
    )
    parser.add_argument("--frames", type=int, default=CLIP_SHAPE[1])
    parser.add_argument("--size", type=int, default=CLIP_SHAPE[2])
    parser.add_argument("--readme", type=Path, help="file whose model-table markers get the table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    clip = (3, args.frames, args.size, args.size)
    attentions = [None if a == "none" else a for a in args.attention]
    table = markdown_table(measure_models(args.models, attentions, clip), clip)
    print(table)
    if args.readme is not None:
        args.readme.write_text(replace_between_markers(args.readme.read_text(), table))
    return table


if __name__ == "__main__":
    main()
