"""Kinetics-style CSV annotations.

Accepted columns (header row required, any order, case-insensitive):

* ``path,label``: a video file or frame folder (absolute, or relative to the data root, else to the CSV's
  folder) and its class name;
* ``path,labels``: a multi-label data set: ``labels`` holds the video's class names separated by ``;``
  (``walk;talk``), and rows naming the same video are merged (their labels together);
* ``youtube_id,time_start,time_end,label`` (the official Kinetics files, which also carry ``split`` and
  ``is_cc``): the video is looked up anywhere under the data root as ``<youtube_id>_<start:06d>_<end:06d>.<ext>``
  (a trimmed clip, the usual download) or else ``<youtube_id>.<ext>`` (the untrimmed video, whose clips are then
  drawn between ``time_start`` and ``time_end``).

Splits: rows whose ``split`` column says ``train`` / ``val`` (or ``validate``) / ``test``, or separate
``train.csv``, ``val.csv`` (or ``validate.csv``) and ``test.csv`` files. A data set with no validation rows gets
a deterministic held-out part of the training rows (``val_fraction``, ``seed``); one with no test rows uses the
validation rows for "test". Rows whose file is missing (common with Kinetics) are left out with one warning.
Class indices come from the sorted class names of all rows of all splits, so they agree between splits.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .records import VideoRecord, VideoSplit, class_name_problem
from .splitting import is_video, natural_sorted, read_list_file, stratified_holdout, warn_missing

__all__ = ["KNOWN_COLUMNS", "CsvAnnotations", "find_csv_annotations", "records_from_csv"]

KNOWN_COLUMNS = ("path", "label", "labels", "youtube_id", "time_start", "time_end", "split", "is_cc")
#: Separator of the class names in a multi-label CSV's ``labels`` cell.
LABEL_SEPARATOR = ";"
_SPLIT_FILE_NAMES = {
    "train": ("train.csv",),
    "val": ("val.csv", "validate.csv", "validation.csv", "valid.csv"),
    "test": ("test.csv",),
}
_SPLIT_VALUES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "valid": "val", "test": "test"}


@dataclass(frozen=True)
class CsvAnnotations:
    """Either one CSV for the whole data set (``single``) or one CSV per split (``per_split``)."""

    single: Path | None = None
    per_split: dict[str, Path] | None = None


@dataclass(frozen=True)
class _Row:
    labels: tuple[str, ...]
    split: str | None
    path: str | None
    youtube_id: str | None
    time_start: float | None
    time_end: float | None
    source: Path

    @property
    def key(self) -> str:
        return self.path if self.path is not None else f"{self.youtube_id}_{self.time_start}_{self.time_end}"


def find_csv_annotations(root: Path, annotations: Path | None) -> CsvAnnotations | None:
    """The CSV annotations of a data set, or None when it has none."""
    if annotations is not None and annotations.is_file():
        if annotations.suffix.lower() != ".csv":
            raise ValueError(f"annotations file {annotations} is not a .csv file")
        return CsvAnnotations(single=annotations)
    for folder in [annotations] if annotations is not None else [root, root / "annotations"]:
        per_split = {}
        for split, names in _SPLIT_FILE_NAMES.items():
            found = [folder / name for name in names if (folder / name).is_file()]
            if found:
                per_split[split] = found[0]
        if per_split:
            if "train" not in per_split:
                raise ValueError(f"{folder} has {sorted(p.name for p in per_split.values())} but no train.csv")
            return CsvAnnotations(per_split=per_split)
    return None


def _seconds(text: str, column: str, where: str) -> float:
    """A time in seconds: a finite number >= 0 (``float`` takes ``inf``, ``nan`` and ``1e400``)."""
    try:
        value = float(text)
    except ValueError as error:
        raise ValueError(f"{where}: column {column} must hold numbers, got {text!r}") from error
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: column {column} must be a finite number of seconds >= 0, got {text!r}")
    return value


def _read_rows(csv_file: Path) -> tuple[list[_Row], bool]:
    """The rows of one CSV, and whether it gives sets of labels (a ``labels`` column) rather than one label."""
    with io.StringIO(read_list_file(csv_file), newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [(name or "").strip().lower() for name in reader.fieldnames or []]
        unknown = [name for name in columns if name not in KNOWN_COLUMNS]
        if unknown:
            raise ValueError(f"{csv_file}: unknown columns {unknown}; expected a header of {KNOWN_COLUMNS}")
        if ("label" in columns) == ("labels" in columns):
            raise ValueError(
                f"{csv_file}: needs a label column (one class per video) or a labels column (classes separated "
                f"by {LABEL_SEPARATOR!r}), not both or neither (header: {columns})"
            )
        if "path" not in columns and not {"youtube_id", "time_start", "time_end"} <= set(columns):
            raise ValueError(
                f"{csv_file}: needs a path column, or youtube_id, time_start and time_end (header: {columns})"
            )
        reader.fieldnames = columns
        rows = []
        for line_number, raw in enumerate(reader, start=2):
            fields = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if "labels" in fields:
                labels = tuple(name.strip() for name in fields["labels"].split(LABEL_SEPARATOR) if name.strip())
            else:
                labels = (fields.get("label", ""),)
            for label in labels or ("",):
                problem = class_name_problem(label)
                if problem is not None:
                    raise ValueError(f"{csv_file}, line {line_number}: the label {label!r} {problem}")
            split = fields.get("split") or None
            if split is not None:
                if split.lower() not in _SPLIT_VALUES:
                    raise ValueError(f"{csv_file}, line {line_number}: unknown split {split!r}")
                split = _SPLIT_VALUES[split.lower()]
            time_start = time_end = None
            if fields.get("youtube_id"):
                where = f"{csv_file}, line {line_number}"
                time_start = _seconds(fields["time_start"], "time_start", where)
                time_end = _seconds(fields["time_end"], "time_end", where)
                if time_end <= time_start:
                    raise ValueError(f"{where}: time_end ({time_end}) must be after time_start ({time_start})")
            rows.append(
                _Row(
                    labels=labels,
                    split=split,
                    path=fields.get("path") or None,
                    youtube_id=fields.get("youtube_id") or None,
                    time_start=time_start,
                    time_end=time_end,
                    source=csv_file,
                )
            )
    return rows, "labels" in columns


class _Locator:
    """Finds a row's video file; builds an index of the root's videos by name only if a row needs it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_stem: dict[str, Path] | None = None

    def _index(self) -> dict[str, Path]:
        if self._by_stem is None:
            self._by_stem = {}
            for folder, _, names in os.walk(self.root):
                for name in sorted(names):
                    path = Path(folder) / name
                    if is_video(path):
                        self._by_stem.setdefault(path.stem, path)
        return self._by_stem

    def __call__(self, row: _Row, labels: tuple[int, ...]) -> VideoRecord | None:
        label = min(labels)
        if row.path is not None:
            given = Path(row.path).expanduser()
            candidates = [given] if given.is_absolute() else [self.root / given, row.source.parent / given]
            for path in candidates:
                if path.is_file() or path.is_dir():  # a video file or a frame folder
                    return VideoRecord(path, label, labels=labels)
            return None
        start, end = int(round(row.time_start)), int(round(row.time_end))
        index = self._index()
        trimmed = index.get(f"{row.youtube_id}_{start:06d}_{end:06d}")
        if trimmed is not None:
            return VideoRecord(trimmed, label, labels=labels)
        untrimmed = index.get(row.youtube_id)
        if untrimmed is not None and row.time_end > row.time_start >= 0:
            return VideoRecord(untrimmed, label, start_sec=row.time_start, end_sec=row.time_end, labels=labels)
        return None


def _merged(rows: list[_Row]) -> list[_Row]:
    """``rows`` with the rows naming the same video made one, holding all their labels (first row's place)."""
    by_key: dict[str, _Row] = {}
    for row in rows:
        first = by_key.get(row.key)
        if first is None:
            by_key[row.key] = row
        else:
            by_key[row.key] = dataclasses.replace(first, labels=tuple(dict.fromkeys(first.labels + row.labels)))
    return list(by_key.values())


def _rows_by_split(annotations: CsvAnnotations) -> tuple[dict[str, list[_Row]], bool]:
    """The rows of each split, and whether a CSV gives sets of labels (a ``labels`` column)."""
    if annotations.single is not None:
        parts: dict[str, list[_Row]] = {}
        rows, labels_column = _read_rows(annotations.single)
        for row in rows:
            parts.setdefault(row.split or "train", []).append(row)
        return {split: _merged(rows) for split, rows in parts.items()}, labels_column
    read = {split: _read_rows(path) for split, path in annotations.per_split.items()}
    parts = {split: rows for split, (rows, _) in read.items()}
    for split, rows in parts.items():
        other = next((row for row in rows if row.split not in (None, split)), None)
        if other is not None:  # e.g. the whole annotation list saved as train.csv: val rows would train
            raise ValueError(
                f"{other.source} is the {split} file but has rows marked split {other.split!r}; keep each split's "
                "rows in its own file, or give one CSV with a split column (annotations=...)"
            )
    return {split: _merged(rows) for split, rows in parts.items()}, any(column for _, column in read.values())


def _check_labels_are_trained(parts: dict[str, list[_Row]]) -> None:
    """Raise ValueError naming a label of the val or test rows that no training row has (a class the network
    would be asked to predict without ever seeing it)."""
    trained = {label for row in parts.get("train", []) for label in row.labels}
    for split in ("val", "test"):
        for row in parts.get(split, []):
            for label in row.labels:
                if label not in trained:
                    raise ValueError(
                        f"{row.source}: label {label!r} of the {split} rows appears in no training row; "
                        "every class needs training videos"
                    )


def records_from_csv(
    root: Path, annotations: CsvAnnotations, split: str, *, val_fraction: float, seed: int
) -> VideoSplit:
    """The records of ``split`` described by CSV annotations (see the module docstring)."""
    parts, labels_column = _rows_by_split(annotations)
    _check_labels_are_trained(parts)
    class_names = natural_sorted({label for rows in parts.values() for row in rows for label in row.labels})
    label_of = {name: label for label, name in enumerate(class_names)}

    def labels_of(row: _Row) -> tuple[int, ...]:
        return tuple(sorted(label_of[name] for name in row.labels))

    if "val" not in parts:  # stratified by each video's lowest label (its only one in a single-label set)
        train_rows = sorted(parts.get("train", []), key=lambda row: row.key)
        held_out = stratified_holdout([labels_of(r)[0] for r in train_rows], val_fraction, seed, class_names)
        parts["train"] = [row for row, out in zip(train_rows, held_out) if not out]
        parts["val"] = [row for row, out in zip(train_rows, held_out) if out]
    if "test" not in parts:
        parts["test"] = parts["val"]
    locate = _Locator(root)
    records, missing_by_source = [], {}
    for row in parts[split]:
        record = locate(row, labels_of(row))
        if record is None:
            missing_by_source.setdefault(row.source, []).append(row.key)
        else:
            records.append(record)
    for source, missing in missing_by_source.items():
        warn_missing(missing, sum(1 for row in parts[split] if row.source == source), source)
    return VideoSplit(records, class_names, layout="csv", multi_label=labels_column)
