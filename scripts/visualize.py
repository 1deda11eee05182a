#!/usr/bin/env python
"""Draw a trained network's attention over the frames of a video (see --help)."""

from cbam3d.viz.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
