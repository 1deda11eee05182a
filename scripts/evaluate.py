#!/usr/bin/env python
"""Video-level evaluation of a training checkpoint (see --help)."""

from cbam3d.inference.cli import evaluate_main

if __name__ == "__main__":
    raise SystemExit(evaluate_main())
