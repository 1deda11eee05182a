"""The two plain containers the data sub-package passes around: one labelled video, and one split of a data set."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VIDEO_EXTENSIONS", "VideoRecord", "VideoSplit", "class_name_problem"]

#: File name endings (lower case) treated as videos when a folder is scanned (.mts / .m2ts: camcorders'
#: MPEG transport streams).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".flv", ".3gp", ".wmv", ".mts", ".m2ts"}
)


# Right-to-left overrides and isolates reorder how the text around them is shown (a name that reads as another).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def class_name_problem(name: str) -> str | None:
    """What makes ``name`` unfit as a class name, or None: class names are printed and written to files, where a
    control character (a newline, a tab, an escape, a bidirectional override) fakes or hides output."""
    if not name.strip():
        return "is empty"
    for character in name:
        if unicodedata.category(character) == "Cc" or character in _BIDI_CONTROLS:
            return f"holds the control character U+{ord(character):04X}"
    return None


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video: a video file, or a folder of its frames (see :mod:`cbam3d.data.frames`).

    Attributes:
        path: the video file or frame folder.
        label: class index into :attr:`VideoSplit.class_names`; for a multi-label video, its lowest label.
        start_sec, end_sec: optional time window (seconds from the start of the file) that holds the action,
            for an untrimmed Kinetics video named by a ``youtube_id,time_start,time_end,label`` row. Clips are
            then sampled inside the window only. ``None`` means the whole file.
        labels: every class of the video, sorted (a multi-label data set's videos may have several);
            ``(label,)`` when not given.
        fps: the frame rate of a frame folder (a file states its own); ``None`` for video files.
    """

    path: Path
    label: int
    start_sec: float | None = None
    end_sec: float | None = None
    labels: tuple[int, ...] = ()
    fps: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        labels = tuple(sorted(set(self.labels))) or (self.label,)
        object.__setattr__(self, "labels", labels)
        for label in labels:
            if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise ValueError(f"label must be a non-negative int, got {label!r} for {self.path}")
        if self.label != labels[0]:
            raise ValueError(f"label must be the lowest of labels {labels}, got {self.label!r} for {self.path}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps!r} for {self.path}")
        if (self.start_sec is None) != (self.end_sec is None):
            raise ValueError(f"give both start_sec and end_sec or neither, got {self.start_sec!r}, {self.end_sec!r}")
        if self.start_sec is not None:
            start, end = float(self.start_sec), float(self.end_sec)
            if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
                raise ValueError(f"need 0 <= start_sec < end_sec, got {start}, {end} for {self.path}")


@dataclass
class VideoSplit:
    """The records of one split (train / val / test) of a data set.

    Attributes:
        records: the videos, in a deterministic order.
        class_names: ``class_names[label]`` is the name of class ``label``; the same list for every split of a data set.
        flip_safe: whether a horizontal flip keeps every video's label. False for data sets whose classes
            tell left from right (the demo set: ``move_left`` / ``move_right``, ``rotate_cw`` / ``rotate_ccw``);
            pass it on as ``VideoClipDataset(..., flip=split.flip_safe)``. Read from the data root's
            ``cbam3d_dataset.json`` (``{"flip_safe": false}``); True when that file is absent.
        layout: how the split was found: ``"ucf101"``, ``"hmdb51"``, ``"csv"``, ``"ssv2"``, ``"3d-resnets-json"``
            or ``"folder"`` (with ``"frames"`` appended for frame folders, e.g. ``"folder/frames"``).
        root: the data root it was discovered under.
        multi_label: whether the annotations give videos sets of labels (a CSV ``labels`` column); any
            video may then have several (:attr:`VideoRecord.labels`).
    """

    records: list[VideoRecord]
    class_names: list[str]
    flip_safe: bool = True
    layout: str = "folder"
    root: Path | None = None
    multi_label: bool = False

    def __post_init__(self) -> None:
        for name in self.class_names:
            problem = class_name_problem(name)
            if problem is not None:
                where = f" under {self.root}" if self.root is not None else ""
                raise ValueError(f"class name {name!r}{where} {problem}: rename it")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.records)

    def class_counts(self) -> list[int]:
        """Number of videos per class, indexed by label (a multi-label video counts for each of its classes)."""
        counts = [0] * len(self.class_names)
        for record in self.records:
            for label in record.labels:
                counts[label] += 1
        return counts
