"""Data sets described wrongly: bad Kinetics times, labels with no training rows, clips past a video's end,
empty class folders (issue 13). Each is one line naming the file (and line), or a warning naming what is left out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("av")

from cbam3d.data import VideoClipDataset, discover_videos, write_video


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    """An 8-frame, 8 fps (1 s) video."""
    path = tmp_path_factory.mktemp("videos") / "abc.mp4"
    return write_video(path, np.zeros((8, 32, 32, 3), np.uint8), fps=8)


def _kinetics_root(tmp_path, clip_file, rows: list[str]):
    root = tmp_path / "kinetics"
    root.mkdir()
    (root / "abc.mp4").write_bytes(clip_file.read_bytes())
    (root / "kinetics.csv").write_text("label,youtube_id,time_start,time_end,split\n" + "\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("start, end", [("inf", "10"), ("0", "1e400"), ("nan", "10"), ("-1", "4"), ("5", "2")])
def test_kinetics_times_that_are_not_finite_ordered_seconds_are_refused_naming_file_and_line(
    tmp_path, clip_file, start, end
):
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,0,1,train", f"run,abc,{start},{end},train"])
    with pytest.raises(ValueError, match=r"kinetics\.csv, line 3: (column time_|time_end)") as error:
        discover_videos(root, "train", annotations=root / "kinetics.csv")
    assert len(str(error.value).splitlines()) == 1


def test_a_label_found_only_in_the_validation_rows_is_refused_by_name(tmp_path, clip_file):
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,0,1,train", "walk,abc,0,1,val", "swim,abc,0,1,val"])
    with pytest.raises(ValueError, match="label 'swim' of the val rows appears in no training row"):
        discover_videos(root, "train", annotations=root / "kinetics.csv")


def test_a_clip_whose_time_range_starts_after_the_video_ends_is_skipped_with_a_warning(tmp_path, clip_file):
    """The 1 s video asked for 5-7 s: not the last frame repeated, a warning naming the file."""
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,5,7,train", "walk,abc,0,1,val"])
    records = discover_videos(root, "train", annotations=root / "kinetics.csv").records
    dataset = VideoClipDataset(records, frames=4, sampling_rate=1, size=16, mode="eval")
    with pytest.warns(RuntimeWarning, match=r"abc\.mp4: the clip's time range starts at 5.0 s, after the video's end"):
        assert dataset[0] is None


def test_a_clip_inside_the_video_still_loads(tmp_path, clip_file):
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,0.5,1,train", "walk,abc,0,1,val"])
    dataset = VideoClipDataset(
        discover_videos(root, "train", annotations=root / "kinetics.csv").records, frames=4, size=16, mode="eval"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataset[0]["video"].shape == (3, 4, 16, 16)


def test_an_empty_class_folder_is_left_out_with_a_warning_naming_it(tmp_path, clip_file):
    for name in ("jump", "walk"):
        (tmp_path / name).mkdir()
        for index in range(3):
            (tmp_path / name / f"{index}.mp4").write_bytes(clip_file.read_bytes())
    (tmp_path / "swim").mkdir()
    with pytest.warns(RuntimeWarning, match="class folder.* swim hold no videos and are left out"):
        split = discover_videos(tmp_path, "train")
    assert split.class_names == ["jump", "walk"]


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path, clip_file):
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,0,1,train", "walk,abc,0,1,val"])
    csv_file = root / "kinetics.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + csv_file.read_bytes())
    assert len(discover_videos(root, "train", annotations=csv_file).records) == 1


def test_a_csv_that_is_not_utf8_text_is_refused_naming_the_file(tmp_path, clip_file):
    root = _kinetics_root(tmp_path, clip_file, ["walk,abc,0,1,train"])
    csv_file = root / "kinetics.csv"
    csv_file.write_bytes(csv_file.read_bytes() + b"\xff\xfe,abc,0,1,train\n")
    with pytest.raises(ValueError, match=r"kinetics\.csv is not UTF-8 text"):
        discover_videos(root, "train", annotations=csv_file)


def test_a_per_split_csv_holding_rows_of_another_split_is_refused(tmp_path, clip_file):
    """train.csv rows marked ``val`` would otherwise train silently."""
    root = _kinetics_root(tmp_path, clip_file, [])
    (root / "kinetics.csv").unlink()
    (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\nwalk,abc,0,1,train\nrun,abc,0,1,val\n")
    with pytest.raises(ValueError, match=r"train\.csv is the train file but has rows marked split 'val'"):
        discover_videos(root, "train")
