"""discover_videos: the folder, UCF101 and HMDB51 layouts (Kinetics-style CSVs: test_annotations.py), their splits,
the deterministic held-out part, empty class folders left out, and clear errors.

Discovery reads names only, so the "videos" here are empty files with video extensions.
"""

import json
import re
import warnings

import pytest

from cbam3d.data import DATASET_INFO_FILE, discover_videos


@pytest.fixture
def class_folders(touch):
    """``class_folders(root, {class: count}) -> root``: a folder per class of ``count`` videos."""

    def make(root, counts):
        for name, count in counts.items():
            for i in range(count):
                touch(root / name / f"{name}_{i:02d}.mp4")
        return root

    return make


# --- folder per class, no split list -------------------------------------------------------------------------


def test_folder_layout_holds_out_a_stratified_fraction_of_every_class(tmp_path, class_folders, video_names):
    class_folders(tmp_path, {"jump": 10, "run": 20, "swim": 5})
    train = discover_videos(tmp_path, "train", val_fraction=0.2)
    val = discover_videos(tmp_path, "val", val_fraction=0.2)
    assert train.layout == "folder" and train.class_names == ["jump", "run", "swim"]
    assert val.class_counts() == [2, 4, 1]
    assert train.class_counts() == [8, 16, 4]
    assert not set(video_names(train)) & set(video_names(val))


def test_folder_layout_validation_split_is_deterministic_and_depends_on_the_seed(tmp_path, class_folders, video_names):
    class_folders(tmp_path, {"a": 30, "b": 30})
    first = video_names(discover_videos(tmp_path, "val", seed=0))
    assert first == video_names(discover_videos(tmp_path, "val", seed=0))
    assert first != video_names(discover_videos(tmp_path, "val", seed=1))


def test_adding_a_class_leaves_the_other_classes_split_unchanged(tmp_path, class_folders, video_names):
    class_folders(tmp_path, {"b": 12, "c": 12})
    before = video_names(discover_videos(tmp_path, "val"))
    class_folders(tmp_path, {"a": 12})
    after = [n for n in video_names(discover_videos(tmp_path, "val")) if not n.startswith("a_")]
    assert before == after


def test_test_split_falls_back_to_val_in_a_two_part_layout(tmp_path, class_folders):
    class_folders(tmp_path, {"a": 10, "b": 10})
    assert discover_videos(tmp_path, "test").records == discover_videos(tmp_path, "val").records


def test_videos_in_nested_folders_and_upper_case_extensions_are_found_and_other_files_ignored(tmp_path, touch):
    touch(tmp_path / "a" / "x" / "clip.AVI")
    touch(tmp_path / "a" / "clip2.mkv")
    touch(tmp_path / "a" / "notes.txt")
    touch(tmp_path / "b" / "clip.webm")
    touch(tmp_path / "b" / "clip2.mp4")
    records = discover_videos(tmp_path, "train").records + discover_videos(tmp_path, "val").records
    assert sorted(r.path.name for r in records) == ["clip.AVI", "clip.webm", "clip2.mkv", "clip2.mp4"]


# --- UCF101 / HMDB51 split lists -----------------------------------------------------------------------------


@pytest.fixture
def ucf_layout(class_folders):
    """``ucf_layout(root, list_dir="ucfTrainTestlist") -> root``: two classes and UCF101 lists of two folds."""

    def make(root, list_dir="ucfTrainTestlist"):
        class_folders(root, {"ApplyLipstick": 3, "Biking": 3})
        lists = root / list_dir
        lists.mkdir()
        (lists / "classInd.txt").write_text("1 Biking\n2 ApplyLipstick\n")  # deliberately not alphabetical
        (lists / "trainlist01.txt").write_text(
            "Biking/Biking_00.mp4 1\nBiking/Biking_01.mp4 1\nApplyLipstick/ApplyLipstick_00.mp4 2\n"
        )
        (lists / "testlist01.txt").write_text("Biking/Biking_02.mp4\napplylipstick/ApplyLipstick_01.mp4\n")
        (lists / "trainlist02.txt").write_text("Biking/Biking_02.mp4 1\n")
        (lists / "testlist02.txt").write_text("Biking/Biking_00.mp4\n")
        return root

    return make


def test_ucf101_lists_give_train_and_test_with_classind_order(tmp_path, ucf_layout):
    ucf_layout(tmp_path)
    train = discover_videos(tmp_path, "train")
    val = discover_videos(tmp_path, "val")
    assert train.layout == "ucf101" and train.class_names == ["Biking", "ApplyLipstick"]
    assert [(r.path.name, r.label) for r in train.records] == [
        ("Biking_00.mp4", 0),
        ("Biking_01.mp4", 0),
        ("ApplyLipstick_00.mp4", 1),
    ]
    # the lower-case folder name in the test list is matched case-insensitively
    assert [(r.path.name, r.label) for r in val.records] == [("Biking_02.mp4", 0), ("ApplyLipstick_01.mp4", 1)]
    assert discover_videos(tmp_path, "test").records == val.records


def test_ucf101_fold_selects_the_list_files(tmp_path, ucf_layout, video_names):
    ucf_layout(tmp_path)
    assert video_names(discover_videos(tmp_path, "train", fold=2)) == ["Biking_02.mp4"]
    with pytest.raises(ValueError, match="fold 3"):
        discover_videos(tmp_path, "train", fold=3)


def test_split_lists_can_be_given_explicitly(tmp_path, ucf_layout):
    ucf_layout(tmp_path, list_dir="elsewhere_x")  # name gives no hint: only found through annotations=
    with pytest.warns(RuntimeWarning, match="class folder.* elsewhere_x hold no videos"):
        assert discover_videos(tmp_path, "train").layout == "folder"
    assert discover_videos(tmp_path, "train", annotations=tmp_path / "elsewhere_x").layout == "ucf101"


def test_listed_but_missing_videos_are_left_out_with_one_warning(tmp_path, ucf_layout):
    ucf_layout(tmp_path)
    with (tmp_path / "ucfTrainTestlist" / "trainlist01.txt").open("a") as f:
        f.write("Biking/gone.mp4 1\n")
    with pytest.warns(RuntimeWarning, match="1 of 4 videos listed .* missing"):
        assert len(discover_videos(tmp_path, "train")) == 3


@pytest.fixture
def hmdb_layout(class_folders):
    """``hmdb_layout(root) -> root``: two classes and HMDB51 split files of two folds."""

    def make(root):
        class_folders(root, {"brush_hair": 3, "cartwheel": 3})
        splits = root / "testTrainMulti_7030_splits"
        splits.mkdir()
        for name in ("brush_hair", "cartwheel"):
            (splits / f"{name}_test_split1.txt").write_text(f"{name}_00.mp4 1\n{name}_01.mp4 2\n{name}_02.mp4 0\n")
            (splits / f"{name}_test_split2.txt").write_text(f"{name}_00.mp4 2\n{name}_01.mp4 1\n{name}_02.mp4 1\n")
        return root

    return make


def test_hmdb51_split_files_tag_train_and_test_and_skip_unused(tmp_path, hmdb_layout, video_names):
    hmdb_layout(tmp_path)
    train = discover_videos(tmp_path, "train")
    assert train.layout == "hmdb51" and train.class_names == ["brush_hair", "cartwheel"]
    assert video_names(train) == ["brush_hair_00.mp4", "cartwheel_00.mp4"]
    assert video_names(discover_videos(tmp_path, "test")) == ["brush_hair_01.mp4", "cartwheel_01.mp4"]
    assert len(discover_videos(tmp_path, "train", fold=2)) == 4
    with pytest.raises(ValueError, match="fold 3"):
        discover_videos(tmp_path, "train", fold=3)


# --- metadata and errors -------------------------------------------------------------------------------------


def test_flip_safe_comes_from_the_dataset_info_file(tmp_path, class_folders):
    class_folders(tmp_path, {"left": 2, "right": 2})
    assert discover_videos(tmp_path).flip_safe is True
    (tmp_path / DATASET_INFO_FILE).write_text(json.dumps({"flip_safe": False}))
    assert discover_videos(tmp_path).flip_safe is False


def test_an_empty_class_folder_is_left_out_with_a_warning_naming_it(tmp_path, class_folders):
    class_folders(tmp_path, {"jump": 3, "walk": 3})
    (tmp_path / "swim").mkdir()
    with pytest.warns(RuntimeWarning, match="class folder.* swim hold no videos and are left out"):
        split = discover_videos(tmp_path, "train")
    assert split.class_names == ["jump", "walk"]


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        discover_videos(tmp_path / "nope")


def test_root_without_videos_is_a_clear_error(tmp_path, touch):
    touch(tmp_path / "a" / "readme.txt")
    with pytest.raises(ValueError, match="holds no video files"):
        discover_videos(tmp_path)


def test_videos_without_class_folders_are_a_clear_error(tmp_path, touch):
    touch(tmp_path / "loose.mp4")
    with pytest.raises(ValueError, match="no class folders"):
        discover_videos(tmp_path)


@pytest.mark.parametrize("split", ["validation", "dev", ""])
def test_unknown_split_is_a_clear_error(tmp_path, split, class_folders):
    class_folders(tmp_path, {"a": 2})
    with pytest.raises(ValueError, match="split must be one of"):
        discover_videos(tmp_path, split)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_val_fraction_outside_0_1_is_refused(tmp_path, fraction, class_folders):
    class_folders(tmp_path, {"a": 2})
    with pytest.raises(ValueError, match="val_fraction"):
        discover_videos(tmp_path, val_fraction=fraction)


def test_discovery_of_a_clean_layout_warns_about_nothing(tmp_path, ucf_layout):
    ucf_layout(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        discover_videos(tmp_path, "train")


@pytest.mark.parametrize("name", ["run\nfake line", "run\x1b[31m", "run\u202eklaw"])
def test_a_class_folder_whose_name_holds_a_control_character_is_refused_naming_it(tmp_path, touch, name):
    touch(tmp_path / "walk" / "a.mp4")
    touch(tmp_path / name / "b.mp4")
    with pytest.raises(ValueError, match=rf"class name {re.escape(repr(name))} holds the control character"):
        discover_videos(tmp_path)
