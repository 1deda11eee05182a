"""The built-in demo data sets (standard and hard): deterministic, cached atomically, generated silently unless
asked, loadable by discover_videos, and their classes live in the motion only (a single frame is at chance, while
frame differences are not)."""

import filecmp
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cbam3d.data import DEMO_CLASSES, discover_videos, ensure_demo_dataset, read_clip
from cbam3d.data import demo as demo_module
from cbam3d.data.decoding import VideoReader


def tiny_demo(root, seed=0, train=1, test=1):
    return ensure_demo_dataset(root, seed=seed, train_per_class=train, test_per_class=test)


def all_files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_byte_identical_data_sets_and_another_seed_differs(tmp_path):
    a, b, c = tiny_demo(tmp_path / "a"), tiny_demo(tmp_path / "b"), tiny_demo(tmp_path / "c", seed=1)
    assert all_files(a) == all_files(b) == all_files(c)
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in all_files(a)], shallow=False)
    assert not mismatch and not errors
    videos = [str(p) for p in all_files(a) if p.suffix == ".mp4"]
    assert len(filecmp.cmpfiles(a, c, videos, shallow=False)[1]) == len(videos)


def test_demo_set_loads_through_discover_videos_as_a_ucf101_layout(tmp_path):
    root = tiny_demo(tmp_path / "demo", train=2, test=1)
    train, val = discover_videos(root, "train"), discover_videos(root, "val")
    assert train.layout == "ucf101" and train.class_names == list(DEMO_CLASSES) == val.class_names
    assert train.class_counts() == [2] * 8 and val.class_counts() == [1] * 8
    assert not {r.path for r in train.records} & {r.path for r in val.records}
    assert discover_videos(root, "test").records == val.records
    assert train.flip_safe is False  # a mirror image swaps move_left/move_right and rotate_cw/rotate_ccw


def test_demo_videos_are_64px_16_frame_h264_yuv420p(tmp_path):
    root = tiny_demo(tmp_path / "demo", train=1, test=1)
    with VideoReader(discover_videos(root).records[0].path) as reader:
        assert (reader.info.num_frames, reader.info.height, reader.info.width) == (16, 64, 64)
        stream = reader._stream
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert reader.read(list(range(16))).shape == (16, 3, 64, 64)


def test_an_existing_demo_set_is_reused_not_regenerated(tmp_path, monkeypatch):
    root = tiny_demo(tmp_path / "demo")
    monkeypatch.setattr(demo_module, "write_video", lambda *a, **k: pytest.fail("regenerated"))
    assert tiny_demo(tmp_path / "demo") == root


def test_an_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    real_write = demo_module.write_video

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # e.g. the user pressed Ctrl-C
        return real_write(*args, **kwargs)

    monkeypatch.setattr(demo_module, "write_video", failing_write)
    with pytest.raises(KeyboardInterrupt):
        tiny_demo(tmp_path / "demo")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary folder
    monkeypatch.setattr(demo_module, "write_video", real_write)
    assert len(discover_videos(tiny_demo(tmp_path / "demo"), "train")) == 8


def test_concurrent_generations_end_up_sharing_one_complete_copy(tmp_path, monkeypatch):
    """Two processes (e.g. DDP ranks) generating at once: the second to finish uses the first one's copy."""
    real_write_dataset = demo_module._write_dataset
    target = tmp_path / "demo"

    def write_while_another_process_finishes_first(folder, *args, **kwargs):
        real_write_dataset(folder, *args, **kwargs)
        if not target.exists():
            monkeypatch.setattr(demo_module, "_write_dataset", real_write_dataset)
            tiny_demo(target)  # the other process renames its copy into place first

    monkeypatch.setattr(demo_module, "_write_dataset", write_while_another_process_finishes_first)
    assert tiny_demo(target) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # the loser's temporary copy is gone
    assert len(discover_videos(target, "train")) == 8


def test_default_location_is_the_cache_folder_named_by_version_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("CBAM3D_CACHE", str(tmp_path / "cache"))
    root = ensure_demo_dataset(seed=7, train_per_class=1, test_per_class=1)
    assert root.parent == tmp_path / "cache"
    assert f"v{demo_module.DEMO_VERSION}" in root.name and "seed7" in root.name
    monkeypatch.delenv("CBAM3D_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo_module.demo_cache_dir() == tmp_path / "xdg" / "cbam3d"


def test_a_folder_holding_something_else_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a cbam3d demo data set"):
        tiny_demo(tmp_path / "mine")
    tiny_demo(tmp_path / "demo", seed=0)
    with pytest.raises(ValueError, match="other settings"):
        tiny_demo(tmp_path / "demo", seed=1)


def test_the_library_generates_the_demo_set_silently_unless_asked(tmp_path, capfd):
    ensure_demo_dataset(tmp_path / "quiet", train_per_class=1, test_per_class=1)
    assert capfd.readouterr().err == ""
    ensure_demo_dataset(tmp_path / "shown", train_per_class=1, test_per_class=1, progress=True)
    err = capfd.readouterr().err
    assert str(tmp_path / "shown") in err and "16/16" in err


def test_the_hard_demo_set_is_deterministic_and_cached_apart_from_the_standard_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CBAM3D_CACHE", str(tmp_path))
    a = ensure_demo_dataset(variant="hard", train_per_class=1, test_per_class=1)
    standard = ensure_demo_dataset(train_per_class=1, test_per_class=1)
    assert a.name.startswith("demo-hard-") and a != standard
    b = ensure_demo_dataset(tmp_path / "again", variant="hard", train_per_class=1, test_per_class=1)
    for video in sorted(a.rglob("*.mp4")):
        assert video.read_bytes() == (b / video.relative_to(a)).read_bytes()
    assert json.loads((a / "cbam3d_dataset.json").read_text())["variant"] == "hard"


# --- a single frame carries no information about the class ---------------------------------------------------


def uniformity_statistic(samples, period):
    """Kolmogorov-Smirnov distance between the samples (taken modulo `period`) and the uniform distribution."""
    values = np.sort(np.mod(samples, period) / period)
    n = len(values)
    return max(np.max(np.arange(1, n + 1) / n - values), np.max(values - np.arange(n) / n))


@pytest.mark.parametrize("class_name", DEMO_CLASSES)
def test_target_position_angle_and_size_are_uniform_in_every_frame_of_every_class(class_name):
    """The symmetric design, checked on the generator: the per-frame marginals do not depend on the class."""
    rng = np.random.default_rng(0)
    paths = [demo_module.sample_target_path(rng, class_name) for _ in range(2000)]
    centre, angle, log_scale = (np.stack([p[i] for p in paths]) for i in range(3))
    low, high = demo_module._LOG_SCALE_MIN, demo_module._LOG_SCALE_MAX
    critical = 1.63 / math.sqrt(2000)  # KS test at the 1 % level
    for frame in (0, 7, 15):
        assert uniformity_statistic(centre[:, frame, 0], 64) < critical
        assert uniformity_statistic(centre[:, frame, 1], 64) < critical
        assert uniformity_statistic(angle[:, frame], 2 * math.pi) < critical
        assert uniformity_statistic(log_scale[:, frame] - low, high - low) < critical


def test_a_hard_clip_shows_several_class_motions_and_its_first_frame_does_not_depend_on_the_class():
    """Classes whose path draws the same random numbers (moves and turns) render an identical first frame from
    the same generator state: a frame holds no class, only the motion does. (Grow and shrink draw their phase
    differently; their per-frame marginals are checked above.)"""
    digits = np.random.default_rng(0).random((10, 8, 8)).astype(np.float32)
    clips = {
        name: demo_module.render_demo_video(name, np.random.default_rng(11), digits, variant="hard")
        for name in DEMO_CLASSES[:6]
    }
    first = clips["move_left"]
    assert first.shape == (16, 64, 64, 3)
    for name, clip in clips.items():
        assert np.array_equal(clip[0], first[0]), name
        assert name == "move_left" or not np.array_equal(clip, first), name
    again = demo_module.render_demo_video("move_left", np.random.default_rng(11), digits, variant="hard")
    assert np.array_equal(again, first)
    with pytest.raises(ValueError, match="variant must be one of"):
        demo_module.render_demo_video("grow", np.random.default_rng(0), digits, variant="harder")


def decoded_frames(root, split, size=32):
    """All 16 frames of every video of a split, as float (V, 16, 3, size, size) in [0, 1], and the labels."""
    records = discover_videos(root, split).records
    videos = torch.stack([read_clip(r.path, range(16)) for r in records]).float() / 255
    videos = F.adaptive_avg_pool2d(videos.flatten(0, 1), size).unflatten(0, (len(records), 16))
    return videos, torch.tensor([r.label for r in records])


def frame_model_accuracy(train, test, *, inputs, steps, seed=0):
    """Held-out video-level accuracy of a small 2D CNN trained for `steps` steps on `inputs(frames)`.

    `inputs` maps video frames (V, 16, C, H, W) to per-position model inputs (V, P, C, H, W); a video's
    prediction averages the log-probabilities over its P positions.
    """
    torch.manual_seed(seed)
    (train_videos, train_labels), (test_videos, test_labels) = train, test
    x_train = inputs(train_videos)
    positions = x_train.shape[1]
    x_train, y_train = x_train.flatten(0, 1), train_labels.repeat_interleave(positions)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, len(DEMO_CLASSES)),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        batch = torch.randint(len(x_train), (64,))
        loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        x_test = inputs(test_videos)
        log_probs = model(x_test.flatten(0, 1)).log_softmax(-1).unflatten(0, x_test.shape[:2])
        return float((log_probs.mean(1).argmax(-1) == test_labels).float().mean())


def single_frames(videos):
    return videos[:, :-2]


def frame_differences(videos):
    return videos[:, 2:] - videos[:, :-2]


def check_single_frame_is_at_chance(root, steps, chance_bound, contrast_bound):
    train, test = decoded_frames(root, "train"), decoded_frames(root, "test")
    one_frame = frame_model_accuracy(train, test, inputs=single_frames, steps=steps)
    # The contrast, same model and budget: two frames' difference holds the motion, so the same test would
    # fail if frames were not informative enough to learn from.
    difference = frame_model_accuracy(train, test, inputs=frame_differences, steps=steps)
    print(f"held-out video accuracy: one frame {one_frame:.3f}, frame difference {difference:.3f}")
    assert one_frame < chance_bound, f"a one-frame model reached {one_frame:.3f} (chance 0.125)"
    assert difference > contrast_bound, f"the frame-difference model reached only {difference:.3f}"


def test_a_one_frame_model_is_at_chance_but_a_frame_difference_model_is_not(tmp_path):
    """Fast version: 8 x 16 training and 8 x 12 held-out videos, 300 steps per model.

    Chance is 1/8; with 96 held-out videos its standard error is 0.034, so 0.25 is 3.7 of them above it
    and 0.3 (the frame-difference model's bound) 5 of them.
    """
    root = ensure_demo_dataset(tmp_path / "demo", seed=3, train_per_class=16, test_per_class=12)
    check_single_frame_is_at_chance(root, steps=300, chance_bound=0.25, contrast_bound=0.3)


@pytest.mark.slow
def test_a_one_frame_model_is_at_chance_on_a_larger_demo_set(tmp_path):
    """Slow version: 8 x 60 training and 8 x 30 held-out videos, 1000 steps per model, tighter bounds.

    With 240 held-out videos chance's standard error is 0.021: 0.19 is 3 of them above 1/8.
    """
    root = ensure_demo_dataset(tmp_path / "demo", seed=4, train_per_class=60, test_per_class=30)
    check_single_frame_is_at_chance(root, steps=1000, chance_bound=0.19, contrast_bound=0.5)
