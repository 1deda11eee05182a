"""Kinetics-style CSV annotations (cbam3d.data.annotations) through discover_videos: trimmed clips and untrimmed
videos with a time window, path/label lists with a held-out part, relative and absolute paths; and CSVs described
wrongly (unknown columns, times that are not finite ordered seconds, labels with no training rows, text that is
not UTF-8, rows of another split), each refused in one line naming the file (and line).

Discovery reads names only, so the "videos" here are empty files with video extensions."""

import re

import pytest

from cbam3d.data import discover_videos


def test_kinetics_csv_finds_trimmed_clips_anywhere_and_untrimmed_videos_with_a_time_window(
    tmp_path, touch, video_names
):
    touch(tmp_path / "train" / "abseiling" / "aaa_000010_000020.mp4")
    touch(tmp_path / "train" / "juggling" / "bbb_000004_000014.mp4")
    touch(tmp_path / "raw" / "ccc.mkv")  # an untrimmed download
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,aaa,10,20,train,0\njuggling,bbb,4,14,train,0\njuggling,ccc,30,40,train,0\n"
        "abseiling,ddd,0,10,train,0\n"
    )
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end\nabseiling,aaa,10,20\n")
    with pytest.warns(RuntimeWarning, match="1 of 4 videos listed in .*train.csv are missing"):
        train = discover_videos(tmp_path, "train")
    assert train.layout == "csv" and train.class_names == ["abseiling", "juggling"]
    by_name = {r.path.name: r for r in train.records}
    assert by_name["aaa_000010_000020.mp4"].label == 0 and by_name["aaa_000010_000020.mp4"].start_sec is None
    assert (by_name["ccc.mkv"].label, by_name["ccc.mkv"].start_sec, by_name["ccc.mkv"].end_sec) == (1, 30, 40)
    assert video_names(discover_videos(tmp_path, "val")) == ["aaa_000010_000020.mp4"]
    assert discover_videos(tmp_path, "test").records == discover_videos(tmp_path, "val").records


def test_path_label_csv_without_split_gets_a_deterministic_held_out_part(tmp_path, touch, video_names):
    rows = []
    for label in ("cat", "dog"):
        for i in range(10):
            touch(tmp_path / "clips" / f"{label}{i}.mp4")
            rows.append(f"clips/{label}{i}.mp4,{label}")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("path,label\n" + "\n".join(rows) + "\n")
    train = discover_videos(tmp_path, "train", annotations=csv_file, val_fraction=0.3)
    val = discover_videos(tmp_path, "val", annotations=csv_file, val_fraction=0.3)
    assert val.class_counts() == [3, 3] and train.class_counts() == [7, 7]
    assert video_names(val) == video_names(discover_videos(tmp_path, "val", annotations=csv_file, val_fraction=0.3))


def test_csv_paths_may_be_relative_to_the_csv_folder_or_absolute(tmp_path, touch):
    touch(tmp_path / "lists" / "clips" / "a.mp4")
    absolute = touch(tmp_path / "elsewhere" / "b.mp4")
    csv_file = tmp_path / "lists" / "train.csv"
    csv_file.write_text(f"path,label\nclips/a.mp4,x\n{absolute},y\n")
    train = discover_videos(tmp_path, "train", annotations=csv_file)  # one video per class: none held out
    assert sorted(r.path for r in train.records) == [absolute, tmp_path / "lists" / "clips" / "a.mp4"]


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(kinetics_root):
    root = kinetics_root(["walk,abc,0,1,train", "walk,abc,0,1,val"])
    csv_file = root / "kinetics.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + csv_file.read_bytes())
    assert len(discover_videos(root, "train", annotations=csv_file).records) == 1


# --- refused, naming the file ---------------------------------------------------------------------------
def test_csv_with_unknown_columns_is_refused_naming_them(tmp_path, touch):
    touch(tmp_path / "a.mp4")
    (tmp_path / "train.csv").write_text("filename,category\na.mp4,x\n")
    with pytest.raises(ValueError, match=r"unknown columns \['filename', 'category'\]"):
        discover_videos(tmp_path)


@pytest.mark.parametrize("start, end", [("inf", "10"), ("0", "1e400"), ("nan", "10"), ("-1", "4"), ("5", "2")])
def test_kinetics_times_that_are_not_finite_ordered_seconds_are_refused_naming_file_and_line(kinetics_root, start, end):
    root = kinetics_root(["walk,abc,0,1,train", f"run,abc,{start},{end},train"])
    with pytest.raises(ValueError, match=r"kinetics\.csv, line 3: (column time_|time_end)") as error:
        discover_videos(root, "train", annotations=root / "kinetics.csv")
    assert len(str(error.value).splitlines()) == 1


def test_a_label_found_only_in_the_validation_rows_is_refused_by_name(kinetics_root):
    root = kinetics_root(["walk,abc,0,1,train", "walk,abc,0,1,val", "swim,abc,0,1,val"])
    with pytest.raises(ValueError, match="label 'swim' of the val rows appears in no training row"):
        discover_videos(root, "train", annotations=root / "kinetics.csv")


def test_a_csv_that_is_not_utf8_text_is_refused_naming_the_file(kinetics_root):
    root = kinetics_root(["walk,abc,0,1,train"])
    csv_file = root / "kinetics.csv"
    csv_file.write_bytes(csv_file.read_bytes() + b"\xff\xfe,abc,0,1,train\n")
    with pytest.raises(ValueError, match=r"kinetics\.csv is not UTF-8 text"):
        discover_videos(root, "train", annotations=csv_file)


def test_a_per_split_csv_holding_rows_of_another_split_is_refused(tmp_path, touch):
    """train.csv rows marked ``val`` would otherwise train silently."""
    touch(tmp_path / "abc.mp4")
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nwalk,abc,0,1,train\nrun,abc,0,1,val\n"
    )
    with pytest.raises(ValueError, match=r"train\.csv is the train file but has rows marked split 'val'"):
        discover_videos(tmp_path, "train")


@pytest.mark.parametrize(
    "label, code",
    [('"walk\nfast"', "U+000A"), ("walk\tfast", "U+0009"), ("walk\x1b[2J", "U+001B"), ("klaw\u202e", "U+202E")],
)
def test_a_label_with_a_control_character_is_refused_naming_the_file_and_line(tmp_path, touch, label, code):
    """Labels are printed and written to files: a newline would fake an output line, an escape or a
    bidirectional override would hide or reorder text."""
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "b.mp4")
    (tmp_path / "train.csv").write_text(f"path,label\na.mp4,run\nb.mp4,{label}\n")
    with pytest.raises(
        ValueError, match=rf"train.csv, line 3: the label .* holds the control character {re.escape(code)}"
    ):
        discover_videos(tmp_path)


def test_labels_in_any_script_and_with_spreadsheet_signs_are_kept_as_written(tmp_path, touch):
    for name in ("a", "b", "c"):
        touch(tmp_path / f"{name}.mp4")
    (tmp_path / "train.csv").write_text(
        "path,label\na.mp4,跑步\nb.mp4,=HYPERLINK(x)\nc.mp4,café 🏃\n", encoding="utf-8"
    )
    assert set(discover_videos(tmp_path).class_names) == {"跑步", "=HYPERLINK(x)", "café 🏃"}
