"""``python -m cbam3d``: the ``cbam3d`` command (see cbam3d/cli.py)."""

from .cli import main

raise SystemExit(main())
