"""Finding the labelled videos of a data set split, whatever layout the data set comes in.

Layouts, tried in this order:

1. **Kinetics-style CSV** (``annotations=`` a ``.csv`` file, or ``train.csv`` / ``val.csv`` (or
   ``validate.csv``) / ``test.csv`` in ``annotations=`` or in the root or its ``annotations/`` folder);
   see :mod:`cbam3d.data.annotations`.
2. **UCF101 split lists**: ``trainlist0N.txt`` / ``testlist0N.txt`` (+ optional ``classInd.txt``), next to the
   class folders or in a sub-folder whose name holds "split", "list" or "annot" (e.g. ``ucfTrainTestlist/``),
   or in ``annotations=``. train = trainlist, val = test = testlist of fold N.
3. **HMDB51 split files**: ``<class>_test_splitN.txt`` (lines ``<video> <0|1|2>``, 1 = train, 2 = test),
   found the same way. train = tag 1, val = test = tag 2 of fold N; tag 0 videos are unused.
4. **A folder per class** with no split list: a deterministic held-out part of every class
   (``val_fraction``, shuffled with ``seed``) is "val"; "test" is the same as "val".

Before these: **3D-ResNets-PyTorch's annotation JSON** (``annotations=`` a ``.json`` file) and
**Something-Something v2** (``labels.json`` + ``train.json`` + ``validation.json``); see
:mod:`cbam3d.data.json_layouts`.

A "video" is a video file or a **frame folder** (``image_00001.jpg`` ... or ``img_00001.jpg`` ...; see
:mod:`cbam3d.data.frames`) in every layout: class folders of frame folders (``CLASS/VIDEO/image_00001.jpg``,
3D-ResNets-PyTorch and MMAction2 "rawframes"), CSV paths naming folders, split lists whose ``CLASS/VIDEO.avi``
is a folder ``CLASS/VIDEO`` on disk.

In every layout with only two parts, ``split="test"`` returns the "val" part.
A ``cbam3d_dataset.json`` file in the root may state ``{"flip_safe": false}`` (see :class:`VideoSplit`) and
the frame rate of frame folders, ``{"fps": 30}`` (default :data:`~cbam3d.data.frames.DEFAULT_FRAME_FPS`, with
a warning).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

from .annotations import find_csv_annotations, records_from_csv
from .frames import DATASET_INFO_FILE, DEFAULT_FRAME_FPS, dataset_info, frame_folder_fps, is_frame_folder
from .json_layouts import find_ssv2, ssv2_split, three_d_resnets_split
from .records import VIDEO_EXTENSIONS, VideoRecord, VideoSplit
from .splitting import SPLITS, is_video, natural_sorted, read_list_file, stratified_holdout, videos_in, warn_missing

__all__ = ["DATASET_INFO_FILE", "SPLITS", "discover_videos"]

_SPLIT_DIR_HINTS = ("split", "list", "annot")
_HMDB_SPLIT_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<fold>\d+)\.txt$")


def _read_flip_safe(root: Path, default: bool) -> bool:
    flip_safe = dataset_info(root).get("flip_safe", default)
    if not isinstance(flip_safe, bool):
        raise ValueError(f"{root / DATASET_INFO_FILE}: flip_safe must be true or false, got {flip_safe!r}")
    return flip_safe


def _with_frame_rate(result: VideoSplit, root: Path) -> None:
    """Give the split's frame folders the data set's frame rate (warning when it states none)."""
    folders = [i for i, record in enumerate(result.records) if record.path.is_dir()]
    if not folders:
        return
    fps = frame_folder_fps(root)
    if fps is None:
        fps = DEFAULT_FRAME_FPS
        warnings.warn(
            f"{root}: frame folders state no frame rate; taking {DEFAULT_FRAME_FPS:g} fps (set it with "
            f'{{"fps": ...}} in {DATASET_INFO_FILE})',
            RuntimeWarning,
            stacklevel=3,
        )
    for i in folders:
        result.records[i] = dataclasses.replace(result.records[i], fps=fps)


def _split_list_dirs(root: Path, annotations: Path | None) -> list[Path]:
    if annotations is not None:
        return [annotations]
    hinted = [d for d in sorted(root.iterdir()) if d.is_dir() and any(h in d.name.lower() for h in _SPLIT_DIR_HINTS)]
    return [root, *hinted]


class _PathResolver:
    """Maps a relative path from a split list to the file under root, case-insensitively if need be."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lowercase: dict[str, Path] | None = None

    def __call__(self, relative: str) -> Path | None:
        path = self.root / relative
        if path.is_file():
            return path
        if is_frame_folder(path.with_suffix("")):  # the list names CLASS/VIDEO.avi, extracted to CLASS/VIDEO/
            return path.with_suffix("")
        if self._lowercase is None:
            self._lowercase = {
                p.relative_to(self.root).as_posix().lower(): p for p in self.root.rglob("*") if is_video(p)
            }
        return self._lowercase.get(Path(relative).as_posix().lower())


def _ucf101(root: Path, list_dir: Path, split: str, fold: int) -> VideoSplit:
    train_list, test_list = list_dir / f"trainlist{fold:02d}.txt", list_dir / f"testlist{fold:02d}.txt"
    if not (train_list.is_file() and test_list.is_file()):
        found = sorted(p.name for p in list_dir.glob("*list0*.txt"))
        raise ValueError(f"fold {fold}: {train_list.name} and {test_list.name} not both in {list_dir} (found {found})")

    def entries(list_file: Path) -> list[str]:
        lines = [line.split() for line in read_list_file(list_file).splitlines()]
        return [fields[0] for fields in lines if fields]

    class_file = list_dir / "classInd.txt"
    if class_file.is_file():
        indexed = [line.split(maxsplit=1) for line in read_list_file(class_file).splitlines() if line.strip()]
        try:
            class_names = [name.strip() for _, name in sorted(indexed, key=lambda pair: int(pair[0]))]
        except ValueError as error:
            raise ValueError(f"{class_file}: expected lines '<index> <class name>': {error}") from error
    else:
        class_names = natural_sorted({Path(e).parts[0] for e in entries(train_list) + entries(test_list)})
    label_of = {name.lower(): label for label, name in enumerate(class_names)}
    list_file = train_list if split == "train" else test_list
    resolve = _PathResolver(root)
    records, missing = [], []
    listed = entries(list_file)
    for entry in listed:
        class_name = Path(entry).parts[0].lower()
        if class_name not in label_of:
            raise ValueError(f"{list_file}: class folder {Path(entry).parts[0]!r} of {entry} is not in {class_names}")
        path = resolve(entry)
        if path is None:
            missing.append(entry)
        else:
            records.append(VideoRecord(path, label_of[class_name]))
    warn_missing(missing, len(listed), list_file)
    return VideoSplit(records, class_names, layout="ucf101")


def _hmdb51(root: Path, split_files: dict[str, Path], split: str) -> VideoSplit:
    class_names = natural_sorted(set(split_files))
    wanted_tag = "1" if split == "train" else "2"
    resolve = _PathResolver(root)
    records = []
    for label, class_name in enumerate(class_names):
        split_file = split_files[class_name]
        listed, missing = 0, []
        for line in read_list_file(split_file).splitlines():
            fields = line.split()
            if len(fields) < 2 or fields[1] != wanted_tag:
                continue
            listed += 1
            path = resolve(f"{class_name}/{fields[0]}")
            if path is None:
                missing.append(fields[0])
            else:
                records.append(VideoRecord(path, label))
        warn_missing(missing, listed, split_file)
    return VideoSplit(records, class_names, layout="hmdb51")


def _find_split_lists(root: Path, annotations: Path | None, split: str, fold: int) -> VideoSplit | None:
    for list_dir in _split_list_dirs(root, annotations):
        if any(list_dir.glob("trainlist*.txt")):
            return _ucf101(root, list_dir, split, fold)
        hmdb = {}
        folds_seen = set()
        for path in list_dir.glob("*_test_split*.txt"):
            match = _HMDB_SPLIT_FILE.match(path.name)
            if match:
                folds_seen.add(int(match["fold"]))
                if int(match["fold"]) == fold:
                    hmdb[match["name"]] = path
        if folds_seen and not hmdb:
            raise ValueError(f"no HMDB51 split files for fold {fold} in {list_dir} (folds found: {sorted(folds_seen)})")
        if hmdb:
            return _hmdb51(root, hmdb, split)
    return None


def _class_folders(root: Path, split: str, val_fraction: float, seed: int) -> VideoSplit:
    videos_by_class: dict[str, list[Path]] = {}
    empty: list[str] = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            videos = videos_in(folder)
            if videos:
                videos_by_class[folder.name] = videos
            else:
                empty.append(folder.name)
    if empty and videos_by_class:
        warnings.warn(
            f"{root}: class folder(s) {', '.join(empty)} hold no videos and are left out "
            f"({len(videos_by_class)} classes kept)",
            RuntimeWarning,
            stacklevel=3,
        )
    if not videos_by_class:
        loose = [p for p in root.iterdir() if is_video(p)]
        if loose:
            raise ValueError(
                f"{root} holds videos but no class folders: put each class's videos in a folder named after the "
                f"class, or describe them in a CSV (annotations=...)"
            )
        raise ValueError(
            f"{root} holds no video files (looked for {', '.join(sorted(VIDEO_EXTENSIONS))}) and no frame folders "
            "(image_00001.jpg, img_00001.jpg)"
        )
    class_names = natural_sorted(set(videos_by_class))
    all_records = [VideoRecord(path, label) for label, name in enumerate(class_names) for path in videos_by_class[name]]
    held_out = stratified_holdout([r.label for r in all_records], val_fraction, seed, class_names)
    want_held_out = split != "train"
    records = [record for record, out in zip(all_records, held_out) if out == want_held_out]
    return VideoSplit(records, class_names, layout="folder")


def discover_videos(
    root: str | Path,
    split: str = "train",
    *,
    fold: int = 1,
    annotations: str | Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> VideoSplit:
    """The labelled videos of one split of the data set under ``root`` (layouts: see the module docstring).

    Args:
        root: the data set's folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fold: which official split (1, 2 or 3 for UCF101 / HMDB51).
        annotations: a CSV file, or a folder holding CSVs or split lists, when they are not in the usual places.
        val_fraction, seed: the held-out part when a layout has no validation list.

    Raises:
        ValueError: the root does not exist or holds no videos, an unknown split, a bad fold, a CSV with unknown
            columns, or a split that comes out empty.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"data root {root} does not exist or is not a folder")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
        raise ValueError(f"fold must be a positive int, got {fold!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if annotations is not None:
        annotations = Path(annotations).expanduser()
        if not annotations.exists():
            raise ValueError(f"annotations {annotations} does not exist")

    ssv2 = find_ssv2(root, annotations)
    if annotations is not None and annotations.suffix.lower() == ".json":
        result = three_d_resnets_split(root, annotations, split)
    elif ssv2 is not None:
        result = ssv2_split(root, ssv2, split)
    elif (csv_files := find_csv_annotations(root, annotations)) is not None:
        result = records_from_csv(root, csv_files, split, val_fraction=val_fraction, seed=seed)
    else:
        result = _find_split_lists(root, annotations, split, fold)
        if result is None:
            if annotations is not None:
                raise ValueError(f"annotations {annotations} holds no CSV and no UCF101 / HMDB51 split list")
            result = _class_folders(root, split, val_fraction, seed)
    if not result.records:
        raise ValueError(f"split {split!r} of {root} ({result.layout} layout) holds no videos")
    result.root = root
    result.flip_safe = _read_flip_safe(root, default=result.flip_safe)
    _with_frame_rate(result, root)
    return result
