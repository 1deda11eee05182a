"""Writing videos with PyAV (cbam3d.data.encoding): the key-frame interval asked for."""

import numpy as np
import pytest

av = pytest.importorskip("av")

from cbam3d.data import write_video  # noqa: E402


def test_write_video_starts_a_key_frame_every_keyframe_interval_frames(tmp_path):
    """Uniform frames (no scene cut for the encoder to add a key frame at): key frames exactly every 4 frames."""
    path = write_video(tmp_path / "gop.mp4", np.full((20, 16, 16, 3), 128, dtype=np.uint8), keyframe_interval=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [round(packet.pts * stream.time_base * 25) for packet in container.demux(stream) if packet.is_keyframe]
    assert sorted(keys) == [0, 4, 8, 12, 16]
    with pytest.raises(ValueError, match="keyframe_interval must be at least 1 frame, got 0"):
        write_video(tmp_path / "none.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8), keyframe_interval=0)
