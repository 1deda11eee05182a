"""cbam3d prepare: the copy keeps the layout and the frames (up to the resize), resumes safely after a kill, and
refuses folders that overlap."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from cbam3d.data import discover_videos, ensure_demo_dataset, read_clip
from cbam3d.data.cli import prepare_main
from cbam3d.data.decoding import VideoReader
from cbam3d.data.prepare import JOURNAL_FILE, PART_SUFFIX, EncodeSettings, encode_video, prepare_dataset

SMALL = EncodeSettings(short_side=32, keyframe_interval=4)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def frame_count(path) -> int:
    with VideoReader(path) as reader:
        return sum(1 for _ in reader.frames())


@pytest.fixture
def demo_root(tmp_path):
    return ensure_demo_dataset(tmp_path / "demo", train_per_class=1, test_per_class=1)


def test_a_prepared_video_gives_the_sources_clip_at_the_same_indices_up_to_the_resize(tmp_path, make_noise_video):
    source = make_noise_video(tmp_path / "source.mp4", frames=40, height=96, width=128)
    prepared = tmp_path / "prepared.mp4"
    assert encode_video(source, prepared, EncodeSettings(short_side=48, keyframe_interval=4)) == 40
    indices = [3, 5, 17, 18, 30, 39]
    copy = read_clip(prepared, indices)
    assert tuple(copy.shape) == (6, 3, 48, 64)

    def resized(frames):
        return F.interpolate(frames.float(), size=(48, 64), mode="bilinear", antialias=True)

    # 8-pixel colour blocks are the worst case of two scaling filters (libswscale's and torch's): about 23 dB
    assert psnr(copy, resized(read_clip(source, indices))) > 20
    # while a neighbouring frame is far away (about 9 dB): the indices point at the same moments
    shifted = resized(read_clip(source, [i + 1 if i < 39 else 0 for i in indices]))
    assert psnr(copy, resized(read_clip(source, indices))) > psnr(copy, shifted) + 8


def test_the_copy_has_the_layout_classes_splits_and_files_of_the_source_and_short_key_frame_intervals(
    tmp_path, demo_root
):
    target = tmp_path / "copy"
    report = prepare_dataset(demo_root, target, settings=EncodeSettings(short_side=32, keyframe_interval=4))
    for split in ("train", "val", "test"):
        original, copy = discover_videos(demo_root, split), discover_videos(target, split)
        assert copy.layout == original.layout and copy.class_names == original.class_names
        assert copy.flip_safe == original.flip_safe
        relative = [(r.path.relative_to(demo_root), r.label) for r in original.records]
        assert [(r.path.relative_to(target), r.label) for r in copy.records] == relative
    others = [p for p in demo_root.rglob("*") if p.is_file() and p.suffix != ".mp4"]
    assert others and sorted(report.copied) == sorted(p.relative_to(demo_root).as_posix() for p in others)
    for path in others:
        assert (target / path.relative_to(demo_root)).read_bytes() == path.read_bytes()
    for relative in report.encoded:
        assert abs(frame_count(target / relative) - frame_count(demo_root / relative)) <= 1
        with VideoReader(target / relative) as reader:
            keys = [i for i, packet in enumerate(reader._container.demux(video=0)) if packet.is_keyframe]
        assert keys[:3] == [0, 4, 8]


def test_a_rerun_after_a_kill_redoes_the_half_written_file_deletes_the_leftover_and_skips_the_finished(
    tmp_path, demo_root
):
    target = tmp_path / "copy"
    first = prepare_dataset(demo_root, target, settings=SMALL)
    journal = (target / JOURNAL_FILE).read_text().splitlines()
    half_written, done = first.encoded[0], first.encoded[1:]
    # the kill: the journal lost the last entry (cut short), that output is half written, a temporary file is left
    kept = [line for line in journal if json.loads(line)["path"] != half_written]
    (target / JOURNAL_FILE).write_text("\n".join(kept) + '\n{"path": "cut sho')
    output = target / half_written
    output.write_bytes(output.read_bytes()[: output.stat().st_size // 3])
    leftover = output.with_name(f".{output.name}{PART_SUFFIX}")
    leftover.write_bytes(b"partial")

    second = prepare_dataset(demo_root, target, settings=SMALL)
    assert second.encoded == [half_written] and sorted(second.already_done) == sorted(done)
    assert not list(target.rglob(f"*{PART_SUFFIX}"))
    assert frame_count(output) == frame_count(demo_root / half_written)
    assert prepare_dataset(demo_root, target, settings=SMALL).encoded == []


def test_an_unreadable_source_video_is_copied_as_is_and_listed_and_the_rest_is_encoded(tmp_path, demo_root, capsys):
    broken = sorted(demo_root.rglob("*.mp4"))[0]
    broken.write_bytes(b"not a video" * 50)
    target = tmp_path / "copy"
    with pytest.warns(RuntimeWarning, match="unreadable"):
        status = prepare_main([str(demo_root), str(target), "--short-side", "32", "--workers", "1", "--no-progress"])
    assert status == 0
    assert (target / broken.relative_to(demo_root)).read_bytes() == broken.read_bytes()
    out = capsys.readouterr().out
    assert "1 unreadable source videos" in out and broken.name in out
    assert len(list(target.rglob("*.mp4"))) == len(list(demo_root.rglob("*.mp4")))


def test_parallel_workers_write_the_same_copy(tmp_path, demo_root):
    report = prepare_dataset(demo_root, tmp_path / "copy", settings=SMALL, workers=2)
    assert len(report.encoded) == len(list(demo_root.rglob("*.mp4"))) and not report.failed


@pytest.mark.parametrize(
    ("target_of", "message"),
    [
        (lambda root: root, "another folder"),
        (lambda root: root / "inside", "must not be inside the source"),
        (lambda root: root.parent, "must not hold the source"),
    ],
)
def test_prepare_refuses_a_target_that_overlaps_the_source(tmp_path, demo_root, usage_error, target_of, message):
    line = usage_error(prepare_main, [str(demo_root), str(target_of(demo_root))])
    assert message in line
    assert not (demo_root / "inside").exists()


def test_a_video_whose_container_cannot_hold_h264_keeps_its_name_and_decodes(tmp_path, make_noise_video):
    """A .webm (Something-Something v2) or .avi keeps the name its lists use; the copy is Matroska inside."""
    source = make_noise_video(tmp_path / "clip.mp4", frames=12)
    for name in ("12345.webm", "v_run.avi"):
        target = tmp_path / name
        assert encode_video(source, target, SMALL) == 12
        assert frame_count(target) == 12
