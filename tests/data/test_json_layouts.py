"""Data sets described by JSON (cbam3d.data.json_layouts): Something-Something v2's labels.json / train.json /
validation.json, and 3D-ResNets-PyTorch's annotation JSON, give the right splits and labels; mismatched files
are refused in one line; multi-label CSVs give records sets of labels."""

from __future__ import annotations

import json

import pytest

from cbam3d.data import discover_videos

SSV2_CLASSES = {"Pushing something from left to right": "0", "Putting something on something": "1"}


def write_ssv2(root, touch, *, templates=None):
    """An SSv2 root: labels.json, train.json (ids 1-4), validation.json (ids 5-6), test.json, videos/<id>.webm."""
    root.mkdir(exist_ok=True)
    (root / "labels.json").write_text(json.dumps(SSV2_CLASSES))
    templates = templates or ["Pushing [something] from left to right", "Putting [something] on [something]"]

    def entries(ids):
        return [{"id": str(i), "label": "x", "template": templates[i % 2], "placeholders": ["a pen"]} for i in ids]

    (root / "train.json").write_text(json.dumps(entries(range(1, 5))))
    (root / "validation.json").write_text(json.dumps(entries(range(5, 7))))
    (root / "test.json").write_text(json.dumps([{"id": "9"}]))
    for i in range(1, 7):
        touch(root / "videos" / f"{i}.webm")
    return root


def test_ssv2_splits_take_their_class_from_the_template_without_brackets_and_are_not_flip_safe(tmp_path, touch):
    root = write_ssv2(tmp_path / "ssv2", touch)
    train, val, test = (discover_videos(root, split) for split in ("train", "val", "test"))
    assert train.layout == "ssv2" and train.class_names == list(SSV2_CLASSES)
    assert {(r.path.name, r.label) for r in train.records} == {
        ("1.webm", 1),
        ("2.webm", 0),
        ("3.webm", 1),
        ("4.webm", 0),
    }
    assert sorted(r.path.name for r in val.records) == ["5.webm", "6.webm"] == sorted(r.path.name for r in test.records)
    assert not train.flip_safe  # left and right change SSv2's labels


def test_an_ssv2_template_that_names_no_class_of_labels_json_is_refused_in_one_line(tmp_path, touch):
    root = write_ssv2(tmp_path / "ssv2", touch, templates=["Pushing [something] from left to right", "Dancing"])
    with pytest.raises(ValueError, match=r"template 'Dancing' of video 1 names no class of labels.json") as caught:
        discover_videos(root, "train")
    assert "\n" not in str(caught.value)


def test_3d_resnets_annotation_json_gives_the_training_and_validation_subsets_with_their_labels(tmp_path, touch):
    root = tmp_path / "ucf"
    database = {
        "v_Jump_g01": {"subset": "training", "annotations": {"label": "Jump", "segment": [1, 40]}},
        "v_Wave_g01": {"subset": "training", "annotations": {"label": "Wave", "segment": [1, 30]}},
        "v_Wave_g02": {"subset": "validation", "annotations": {"label": "Wave", "segment": [1, 30]}},
        "v_Jump_g09": {"subset": "testing", "annotations": {}},
    }
    (root / "Jump" / "v_Jump_g01").mkdir(parents=True)  # a frame folder, as 3D-ResNets-PyTorch extracts them
    touch(root / "Jump" / "v_Jump_g01" / "image_00001.jpg")
    touch(root / "Wave" / "v_Wave_g01.avi")
    touch(root / "Wave" / "v_Wave_g02.avi")
    annotations = tmp_path / "ucf101_01.json"
    annotations.write_text(json.dumps({"labels": ["Jump", "Wave"], "database": database}))
    with pytest.warns(RuntimeWarning, match="taking 25 fps"):
        train = discover_videos(root, "train", annotations=annotations)
    val = discover_videos(root, "val", annotations=annotations)
    assert train.layout == "3d-resnets-json" and train.class_names == ["Jump", "Wave"]
    assert [(r.path.name, r.label) for r in train.records] == [("v_Jump_g01", 0), ("v_Wave_g01.avi", 1)]
    assert [(r.path.name, r.label) for r in val.records] == [("v_Wave_g02.avi", 1)]
    database["v_Wave_g02"]["annotations"]["label"] = "Clap"
    annotations.write_text(json.dumps({"labels": ["Jump", "Wave"], "database": database}))
    with pytest.raises(ValueError, match="video v_Wave_g02 has label 'Clap', which is not in its labels"):
        discover_videos(root, "val", annotations=annotations)


def test_a_labels_column_gives_each_video_its_set_of_labels_merging_rows_of_the_same_path(tmp_path, touch):
    for name in ("a", "b", "c", "d"):
        touch(tmp_path / f"{name}.mp4")
    (tmp_path / "train.csv").write_text("path,labels\na.mp4,walk;talk\nb.mp4,talk\nc.mp4,walk\nc.mp4,sit\n")
    (tmp_path / "val.csv").write_text("path,labels\nd.mp4,sit; walk\n")
    train, val = discover_videos(tmp_path, "train"), discover_videos(tmp_path, "val")
    assert train.multi_label and train.class_names == ["sit", "talk", "walk"]
    assert {r.path.name: r.labels for r in train.records} == {"a.mp4": (1, 2), "b.mp4": (1,), "c.mp4": (0, 2)}
    assert [r.labels for r in val.records] == [(0, 2)] and val.records[0].label == 0
    assert train.class_counts() == [1, 2, 2]


def test_a_csv_with_both_a_label_and_a_labels_column_is_refused(tmp_path, touch):
    touch(tmp_path / "a.mp4")
    (tmp_path / "train.csv").write_text("path,label,labels\na.mp4,walk,walk\n")
    with pytest.raises(ValueError, match="needs a label column .* or a labels column"):
        discover_videos(tmp_path, "train")
