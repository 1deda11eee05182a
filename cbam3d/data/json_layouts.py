"""The data sets described by JSON files: Something-Something v2, and 3D-ResNets-PyTorch's annotation files.

**Something-Something v2** (found in the data root or its ``annotations/`` folder, or in ``annotations=``):
``labels.json`` maps each class's name to its index (``{"Approaching something with your camera": "0"}``);
``train.json`` and ``validation.json`` list ``{"id", "label", "template", "placeholders"}``. A video's class is
its ``template`` with the brackets around the placeholders removed (``"Putting [something] on [something]"``
is class ``"Putting something on something"``), as SSv2's own code does. Its video is ``<id>.webm`` (or a frame
folder ``<id>/``) in the root, its ``videos/`` folder or ``20bn-something-something-v2/``. train = train.json,
val = test = validation.json (the test list has no labels). Left and right change SSv2's labels ("Pushing
something from left to right"), so the split says ``flip_safe`` False unless ``cbam3d_dataset.json`` says
otherwise.

**3D-ResNets-PyTorch annotation JSON** (``annotations=`` a ``.json`` file such as ``ucf101_01.json``):
``{"labels": [class names], "database": {video_id: {"subset": "training" | "validation" | "testing",
"annotations": {"label": name, "segment": [start, end]}}}}``. A video is ``ROOT/<label>/<video_id>`` (a frame
folder, or a file with a video extension), else ``ROOT/<video_id>``. train = "training", val = test =
"validation" ("testing" entries have no labels). The ``segment`` (frame numbers of the trimmed videos those
files describe, spanning the whole video) is not used: clips are drawn from the whole video.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .records import VIDEO_EXTENSIONS, VideoRecord, VideoSplit
from .splitting import read_list_file, warn_missing

__all__ = ["find_ssv2", "ssv2_split", "three_d_resnets_split"]

_SSV2_SPLIT_FILES = {"train": "train.json", "val": "validation.json", "test": "validation.json"}
_SSV2_VIDEO_DIRS = ("", "videos", "20bn-something-something-v2")
_THREE_D_RESNETS_SUBSETS = {"train": "training", "val": "validation", "test": "validation"}
_PLACEHOLDER_BRACKETS = re.compile(r"[\[\]]")
_EXTENSIONS = (".webm", ".mp4", *sorted(VIDEO_EXTENSIONS - {".webm", ".mp4"}))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_list_file(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def _locate(candidates: list[Path]) -> Path | None:
    """The first candidate that is a frame folder, or ``candidate.<video extension>`` that is a file."""
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
        for extension in _EXTENSIONS:
            path = candidate.with_name(candidate.name + extension)
            if path.is_file():
                return path
    return None


def find_ssv2(root: Path, annotations: Path | None) -> Path | None:
    """The folder holding SSv2's ``labels.json`` and ``train.json``, or None when the data set is not SSv2."""
    folders = [annotations] if annotations is not None and annotations.is_dir() else [root, root / "annotations"]
    for folder in folders:
        if (folder / "labels.json").is_file() and (folder / "train.json").is_file():
            return folder
    return None


def _ssv2_class_names(labels_file: Path) -> list[str]:
    labels = _read_json(labels_file)
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f"{labels_file}: expected an object mapping class names to indices")
    try:
        by_index = {int(index): name for name, index in labels.items()}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{labels_file}: class indices must be integers ({error})") from error
    if sorted(by_index) != list(range(len(labels))):
        raise ValueError(f"{labels_file}: class indices must be 0 to {len(labels) - 1}, each once")
    return [by_index[index] for index in range(len(labels))]


def ssv2_split(root: Path, folder: Path, split: str) -> VideoSplit:
    """The records of ``split`` of the SSv2 data set under ``root`` with its JSON files in ``folder``.

    Raises:
        ValueError: a missing or malformed JSON file, or a template that names no class of labels.json.
    """
    class_names = _ssv2_class_names(folder / "labels.json")
    label_of = {name: label for label, name in enumerate(class_names)}
    list_file = folder / _SSV2_SPLIT_FILES[split]
    if not list_file.is_file():
        raise ValueError(f"{folder} has SSv2's labels.json and train.json but no {list_file.name}")
    entries = _read_json(list_file)
    if not isinstance(entries, list):
        raise ValueError(f"{list_file}: expected a list of {{id, label, template, placeholders}} entries")
    records, missing = [], []
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise ValueError(f"{list_file}: entry {entry!r} lacks an id or a template")
        name = _PLACEHOLDER_BRACKETS.sub("", entry["template"])
        if name not in label_of:
            raise ValueError(
                f"{list_file}: template {entry['template']!r} of video {entry['id']} names no class of labels.json"
            )
        video_id = str(entry["id"])
        path = _locate([root / sub / video_id for sub in _SSV2_VIDEO_DIRS])
        if path is None:
            missing.append(video_id)
        else:
            records.append(VideoRecord(path, label_of[name]))
    warn_missing(missing, len(entries), list_file)
    return VideoSplit(records, class_names, flip_safe=False, layout="ssv2")


def three_d_resnets_split(root: Path, annotation_file: Path, split: str) -> VideoSplit:
    """The records of ``split`` described by a 3D-ResNets-PyTorch annotation JSON (see the module docstring).

    Raises:
        ValueError: the file lacks ``labels`` or ``database``, or an entry names a class not in ``labels``.
    """
    content = _read_json(annotation_file)
    if (
        not isinstance(content, dict)
        or not isinstance(content.get("labels"), list)
        or not isinstance(content.get("database"), dict)
    ):
        raise ValueError(f'{annotation_file}: expected 3D-ResNets-PyTorch\'s {{"labels": [...], "database": {{...}}}}')
    class_names = [str(name) for name in content["labels"]]
    label_of = {name: label for label, name in enumerate(class_names)}
    subset = _THREE_D_RESNETS_SUBSETS[split]
    records, missing, listed = [], [], 0
    for video_id, entry in content["database"].items():
        if not isinstance(entry, dict) or entry.get("subset") != subset:
            continue
        listed += 1
        name = str((entry.get("annotations") or {}).get("label", ""))
        if name not in label_of:
            raise ValueError(f"{annotation_file}: video {video_id} has label {name!r}, which is not in its labels")
        path = _locate([root / name / video_id, root / video_id])
        if path is None:
            missing.append(video_id)
        else:
            records.append(VideoRecord(path, label_of[name]))
    warn_missing(missing, listed, annotation_file)
    return VideoSplit(records, class_names, layout="3d-resnets-json")
