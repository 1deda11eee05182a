#!/usr/bin/env python
"""Train a video classifier with attention (see --help; no arguments: the built-in demo set)."""

from cbam3d.training.cli import train_main

if __name__ == "__main__":
    raise SystemExit(train_main())
