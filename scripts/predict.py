#!/usr/bin/env python
"""Top-k classes of video files with a training checkpoint (see --help)."""

from cbam3d.inference.cli import predict_main

if __name__ == "__main__":
    raise SystemExit(predict_main())
