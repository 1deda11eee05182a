#!/usr/bin/env python
"""Train a grid of attention configurations x seeds and tabulate accuracy and cost (see --help)."""

from cbam3d.training.ablation.cli import ablate_main

if __name__ == "__main__":
    raise SystemExit(ablate_main())
