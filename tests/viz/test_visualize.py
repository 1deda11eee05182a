"""cbam3d.viz, ``cbam3d visualize`` and scripts/visualize.py: the clip it reads from any video, the upsampling and
overlay of the maps, the files it writes (valid GIF / MP4 / PNG with the expected frame counts and sizes), and bad
options refused before any work."""

import json
from collections import OrderedDict
from pathlib import Path

import av
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cbam3d import BAM, CBAM, SE
from cbam3d.attention.hooks import capture_attention
from cbam3d.data import eval_clip_indices, write_video
from cbam3d.inference.checkpoint import ClipSpec
from cbam3d.viz import (
    LayerOverlay,
    animation_frames,
    animation_layout,
    attention_layers,
    clip_indices,
    heat_overlay,
    read_visual_clip,
    site_label,
    upsample_spatial,
    upsample_temporal,
    visualize_video,
    write_animation,
)
from cbam3d.viz.cli import main as visualize_main

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "visualize.py"
CLASSES = ["left", "right", "still"]
CLIP = ClipSpec(frames=4, sampling_rate=2, size=32, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


def _moving_square(num_frames: int, height: int, width: int) -> np.ndarray:
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        left = 2 + 3 * t % (width - 12)
        frames[t, height // 3 : height // 3 + 10, left : left + 10] = (255, 200, 50)
    return frames


@pytest.fixture(scope="module")
def landscape_video(tmp_path_factory) -> Path:
    """14 frames of 40 x 56 (H x W): wider than high, not the network's size."""
    return write_video(tmp_path_factory.mktemp("video") / "square.mp4", _moving_square(14, 40, 56), fps=10)


@pytest.fixture(scope="module")
def short_portrait_video(tmp_path_factory) -> Path:
    """3 frames of 48 x 30: fewer frames than a clip, higher than wide."""
    return write_video(tmp_path_factory.mktemp("video") / "short.mp4", _moving_square(3, 48, 30), fps=5)


def _tiny_network(num_classes: int = len(CLASSES)) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            stem=nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1),
            joint=CBAM(8, dims=3, reduction=2),
            down=nn.Conv3d(8, 8, 3, stride=2, padding=1),
            factorized=CBAM(8, dims=3, reduction=2, spatial_mode="factorized"),
            pool=nn.AdaptiveAvgPool3d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(8, num_classes),
        )
    )
    for module in model.modules():  # non-trivial BN weights, so the maps are not constant
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.weight.data.uniform_(0.5, 2.0)
    return model


def test_spread_clip_takes_the_middle_of_equal_segments_of_the_whole_video():
    assert clip_indices(100, 4) == [12, 37, 62, 87]
    assert clip_indices(100, 1) == [50]
    short = clip_indices(3, 6)
    assert short == sorted(short) and set(short) == {0, 1, 2}


def test_centre_clip_is_the_clip_evaluation_scores():
    assert clip_indices(100, 8, sampling_rate=4, mode="centre") == eval_clip_indices(100, 8, 4, num_clips=1)[0]
    with pytest.raises(ValueError, match="unknown clip mode 'middle'"):
        clip_indices(100, 8, mode="middle")


def test_a_short_portrait_video_gives_a_full_square_clip(short_portrait_video):
    clip = read_visual_clip(short_portrait_video, frames=5, size=16, display_size=24)
    assert clip.input.shape == (1, 3, 5, 16, 16) and clip.input.dtype == torch.float32
    assert clip.frames.shape == (5, 24, 24, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == sorted(clip.indices) and set(clip.indices) == {0, 1, 2}
    assert clip.fps == pytest.approx(5)


def test_the_centre_clip_is_exactly_the_input_evaluation_scores(landscape_video):
    """With ``mode="centre"`` and the checkpoint's ``eval_resize``, the network sees what evaluate.py feeds it."""
    from cbam3d.data import VideoClipDataset, VideoRecord

    evaluated = VideoClipDataset(
        [VideoRecord(landscape_video, 0)], frames=4, sampling_rate=2, size=16, mode="eval", eval_resize=20
    )[0]["video"]
    clip = read_visual_clip(landscape_video, frames=4, size=16, sampling_rate=2, mode="centre", eval_resize=20)
    torch.testing.assert_close(clip.input[0], evaluated)


def test_each_attention_site_gives_one_spatio_temporal_map_and_one_temporal_profile():
    model = nn.Sequential(
        OrderedDict(
            stem=nn.Conv3d(3, 8, 3, padding=1),
            joint=CBAM(8, dims=3, reduction=2),
            factorized=CBAM(8, dims=3, reduction=2, spatial_mode="factorized"),
            parallel=CBAM(8, dims=3, reduction=2, spatial_mode="factorized", gate_order="parallel"),
            bam=BAM(8, dims=3, reduction=2, dilation=1),
        )
    )
    with torch.no_grad(), capture_attention(model, ("spatial", "temporal")) as maps:
        model(torch.randn(2, 3, 4, 6, 5))
    layers = {layer.label: layer for layer in attention_layers(maps, sample=1)}
    assert list(layers) == ["joint", "factorized", "parallel", "bam"]
    for layer in layers.values():
        assert layer.spatial.shape == (4, 6, 5) and layer.temporal.shape == (4,)
    torch.testing.assert_close(layers["joint"].temporal, layers["joint"].spatial.mean(dim=(1, 2)))
    # the factorized gate's profile is its temporal gate's; the parallel one shows the combined map
    temporal_gate = maps["factorized.spatial_gate.temporal"]["temporal"]
    assert torch.equal(layers["factorized"].temporal, temporal_gate[1, 0, :, 0, 0])
    assert torch.equal(layers["parallel"].spatial, maps["parallel.spatial_gate"]["spatial"][1, 0])
    assert torch.equal(layers["bam"].spatial, maps["bam.spatial_gate"]["spatial"][1, 0])


def test_site_labels_drop_the_attention_suffixes():
    assert site_label("layer2.0.attention") == "layer2.0"
    assert site_label("layer1.1.attention.attention") == "layer1.1"
    assert site_label("bam1.attention") == "bam1"
    assert site_label("attention") == "attention"
    assert site_label("") == "model"


def test_trilinear_upsampling_puts_a_hot_cell_over_the_part_of_the_clip_it_covers():
    cells = torch.zeros(2, 2, 2)
    cells[1, 0, 1] = 1.0  # second half of the clip, top, right
    upsampled = upsample_spatial(cells, (4, 8, 8))
    assert upsampled.shape == (4, 8, 8)
    t, y, x = np.unravel_index(int(upsampled.argmax()), upsampled.shape)
    assert t >= 2 and y < 4 and x >= 4
    assert torch.equal(upsample_spatial(torch.full((1, 3, 3), 0.3), (5, 9, 9)), torch.full((5, 9, 9), 0.3))
    torch.testing.assert_close(upsample_temporal(torch.tensor([0.0, 1.0]), 4), torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_overlay_is_the_frame_and_the_colour_mapped_heat_mixed_by_alpha():
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    heat = torch.rand(2, 5, 6)
    colours = np.rint(matplotlib.colormaps["viridis"](heat.numpy())[..., :3] * 255)
    assert np.array_equal(heat_overlay(frames, heat, alpha=0.0, cmap="viridis"), frames)
    assert np.array_equal(heat_overlay(frames, heat, alpha=1.0, cmap="viridis"), colours.astype(np.uint8))
    half = heat_overlay(frames, heat, alpha=0.5, cmap="viridis").astype(float)
    assert np.abs(half - (frames + colours) / 2).max() <= 1
    with pytest.raises(ValueError, match="heat has shape"):
        heat_overlay(frames, heat[:, :4], alpha=0.5)


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_animation_has_one_frame_per_picture(tmp_path, suffix):
    pictures = [np.full((38, 50, 3), 30 * i, np.uint8) for i in range(7)]
    path = write_animation(pictures, tmp_path / f"a.{suffix}", fps=5)
    if suffix == "gif":
        with Image.open(path) as gif:
            assert (gif.format, gif.n_frames, gif.size) == ("GIF", 7, (50, 38))
    else:
        with av.open(str(path)) as container:
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(decoded) == 7 and decoded[0].shape == (38, 50, 3)
        assert abs(int(decoded[3].mean()) - 90) <= 3  # frames kept their order and content


@pytest.mark.parametrize("display_size", [24, 97])
def test_each_animation_panel_shows_its_frame_pixel_for_pixel_at_the_display_size(display_size):
    """--display-size is the size of the frames in the animation: panels used to be a fixed 240 pixels, the
    frames scaled into them (a 1280x720 clip shown at 224 pixels, or 96 pixels blown up)."""
    rng = np.random.default_rng(display_size)
    frames = rng.integers(0, 256, (3, display_size, display_size, 3), dtype=np.uint8)
    overlays = [
        LayerOverlay(f"layer{i}", rng.integers(0, 256, frames.shape, dtype=np.uint8), 0.0, 1.0) for i in range(6)
    ]
    title = "clip.mp4 | predicted: left 51.0%, right 30.2%, still 18.8%"
    pictures = animation_frames(frames, overlays, [4, 9, 14], title, max_panels_per_row=4)
    layout = animation_layout(frames, overlays, title, max_panels_per_row=4)
    assert len(pictures) == 3 and {picture.shape for picture in pictures} == {(layout.height, layout.width, 3)}
    assert len(layout.corners) == 7 and layout.size == display_size
    for t, picture in enumerate(pictures):
        for (top, left), images in zip(layout.corners, [frames] + [o.images for o in overlays]):
            assert np.array_equal(picture[top : top + display_size, left : left + display_size], images[t])


def _open_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes the whole file: fails on a truncated one
        return image.size


def test_visualize_video_writes_a_gif_grid_temporal_plot_and_summary(landscape_video, tmp_path):
    model = _tiny_network().train()
    result = visualize_video(
        model, landscape_video, tmp_path / "out", CLIP, class_names=CLASSES, top_k=2, display_size=48
    )
    assert model.training, "the model's mode is restored"
    assert result.layers == ["joint", "factorized"]
    assert len(result.frame_indices) == CLIP.frames
    with Image.open(result.animation) as gif:
        assert gif.format == "GIF" and gif.n_frames == CLIP.frames
        sizes = set()
        for index in range(gif.n_frames):
            gif.seek(index)
            sizes.add(gif.size)
        assert len(sizes) == 1 and min(*sizes.pop()) >= 2 * 48  # input and layer panels side by side
    grid_width, grid_height = _open_png(result.grid)
    assert grid_width > CLIP.frames * 48 and grid_height > 3 * 48  # frames x (input + 2 layers)
    _open_png(result.temporal)
    summary = json.loads(result.summary.read_text())
    probabilities = [p["probability"] for p in summary["predictions"]]
    assert len(probabilities) == 2 and probabilities == sorted(probabilities, reverse=True)
    assert {p["class"] for p in summary["predictions"]} <= set(CLASSES)
    assert [layer["spatial_shape"] for layer in summary["layers"]] == [[4, 16, 16], [2, 8, 8]]
    assert [len(layer["temporal"]) for layer in summary["layers"]] == [4, 2]


def test_a_network_with_channel_attention_only_has_nothing_to_draw(landscape_video, tmp_path):
    model = nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1),
        SE(8, dims=3, reduction=2),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )
    with pytest.raises(ValueError, match="no spatial attention map to draw"):
        visualize_video(model, landscape_video, tmp_path, CLIP)


def test_script_writes_an_mp4_and_pngs_from_a_training_checkpoint(
    tiny_checkpoint, landscape_video, load_script, tmp_path, capsys
):
    status = load_script(SCRIPT).main(
        [
            str(landscape_video),
            "--checkpoint",
            str(tiny_checkpoint),
            "--output",
            str(tmp_path),
            "--format",
            "mp4",
            "--display-size",
            "48",
            "--device",
            "cpu",
            "--clip",
            "centre",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "layers: layer1.0, layer2.0, layer3.0, layer4.0" in printed
    with av.open(str(tmp_path / "square_attention.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == CLIP.frames
    assert frames[0].width >= 5 * 48 and frames[0].height >= 48  # input + 4 layers in a row
    for name in ("square_grid.png", "square_temporal.png"):
        _open_png(tmp_path / name)
    summary = json.loads((tmp_path / "square_attention.json").read_text())
    assert summary["frame_indices"] == eval_clip_indices(14, CLIP.frames, CLIP.sampling_rate, num_clips=1)[0]


def test_script_reports_a_missing_checkpoint_as_a_usage_error(landscape_video, load_script, tmp_path, capsys):
    status = load_script(SCRIPT).main(
        [str(landscape_video), "--checkpoint", str(tmp_path / "none.ckpt"), "--output", str(tmp_path)]
    )
    assert status == 2
    assert "none.ckpt" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "option, message",
    [
        ({"cmap": "no-such-map"}, "unknown colour map 'no-such-map'"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"fps": 0}, "fps must be from 0.02 to 100"),
        ({"fps": float("inf")}, "fps must be from 0.02 to 100"),
        ({"fps": 1e-9}, "fps must be from 0.02 to 100"),
        ({"animation_format": "avi"}, "unknown animation format 'avi'"),
    ],
)
def test_bad_drawing_options_are_refused_before_any_work(option, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        visualize_video(_tiny_network(), tmp_path / "not-read.mp4", tmp_path, CLIP, **option)


def test_an_output_naming_a_file_is_refused_in_one_line(tiny_checkpoint, landscape_video, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    argv = [str(landscape_video), "--checkpoint", str(tiny_checkpoint), "--output", str(tmp_path / "taken")]
    assert visualize_main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1 and "is a file, not a folder" in error
