"""``python -m cbam3d``: the ``cbam3d`` command (see cbam3d/cli.py)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
