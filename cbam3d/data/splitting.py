"""Small helpers shared by the layouts: what counts as a video, class-name order, the held-out validation part."""

from __future__ import annotations

import os
import warnings
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from .frames import is_frame_name
from .records import VIDEO_EXTENSIONS

__all__ = [
    "SPLITS",
    "is_video",
    "natural_sorted",
    "read_list_file",
    "stratified_holdout",
    "videos_in",
    "warn_missing",
]

SPLITS = ("train", "val", "test")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def videos_in(folder: Path) -> list[Path]:
    """The video files (by :data:`VIDEO_EXTENSIONS`, hidden files left out) and frame folders anywhere under
    ``folder`` (a frame folder's own sub-folders aside), in path order: what a class folder of ``--data`` holds."""
    found = []
    for parent, folders, names in os.walk(folder):
        if any(is_frame_name(name) for name in names):
            found.append(Path(parent))
            folders.clear()
        else:
            found.extend(Path(parent) / name for name in names if is_video(Path(name)))
    return sorted(found, key=lambda p: p.as_posix())


def read_list_file(path: Path) -> str:
    """The text of a CSV or split list: UTF-8, with or without the byte-order mark spreadsheets write.

    Raises:
        ValueError: naming the file, when it is not UTF-8 text.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error})") from error


def natural_sorted(names: set[str] | list[str]) -> list[str]:
    """Sorted names, numerically if they are all integers ("2" before "10")."""
    names = list(names)
    if names and all(name.isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


def stratified_holdout(labels: list[int], fraction: float, seed: int, class_names: list[str]) -> list[bool]:
    """For each item, whether it is held out: ``round(fraction * n)`` items of every class of n items.

    A class keeps at least one training item and, with two or more items, gives at least one. The choice
    depends only on the seed, the class name and the item's position among its class's items (pass them in a
    sorted order), so adding a class or an item elsewhere leaves the other classes' choices unchanged.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for position, label in enumerate(labels):
        by_class[label].append(position)
    held_out = [False] * len(labels)
    for label, positions in by_class.items():
        n = len(positions)
        count = 0 if n < 2 else min(max(int(round(fraction * n)), 1), n - 1)
        rng = np.random.default_rng([seed, zlib.crc32(class_names[label].encode())])
        for chosen in rng.permutation(n)[:count]:
            held_out[positions[chosen]] = True
    return held_out


def warn_missing(missing: list[str], listed: int, source: Path) -> None:
    """Warn that some listed videos are missing (they are left out)."""
    if missing:
        warnings.warn(
            f"{len(missing)} of {listed} videos listed in {source} are missing and left out (first: {missing[0]})",
            RuntimeWarning,
            stacklevel=4,
        )
