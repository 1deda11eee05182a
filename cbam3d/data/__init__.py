"""Video data: finding labelled videos, decoding clips with PyAV, transforms, a training-friendly copy of a data
set (``prepare_dataset``, ``cbam3d prepare``), and the built-in demo data set.

Needs the ``video`` extra (torchvision, av, numpy, scikit-learn): ``pip install cbam3d[video]``.
``import cbam3d`` does not import this sub-package.

Typical use::

    from torch.utils.data import DataLoader
    from cbam3d.data import VideoClipDataset, collate_clips, discover_videos, ensure_demo_dataset

    root = ensure_demo_dataset()                     # or the folder of UCF101 / HMDB51 / Kinetics
    train = discover_videos(root, "train")
    dataset = VideoClipDataset(train.records, frames=16, sampling_rate=1, size=64, flip=train.flip_safe)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2, collate_fn=collate_clips)
    batch = next(iter(loader))                       # batch["video"]: (N, 3, 16, 64, 64)
"""

from .dataset import VideoClipDataset, collate_clips
from .decoders import DECODERS, available_decoders, decode_error, open_video, read_clip
from .decoding import VideoDecodeError, VideoInfo, VideoReader
from .demo import DEMO_CLASSES, DEMO_VARIANTS, demo_cache_dir, ensure_demo_dataset
from .discovery import SPLITS, discover_videos
from .encoding import write_video
from .frames import DATASET_INFO_FILE, DEFAULT_FRAME_FPS, FrameFolderReader
from .prepare import EncodeSettings, PrepareReport, prepare_dataset
from .probing import unopenable_videos
from .records import VIDEO_EXTENSIONS, VideoRecord, VideoSplit
from .sampling import clip_span, eval_clip_indices, overview_clip_indices, train_clip_indices
from .splitting import videos_in
from .transforms import (
    AUGMENTATIONS,
    KINETICS_MEAN,
    KINETICS_STD,
    NO_AUGMENTATION,
    ClipAugmentation,
    eval_transform,
    train_transform,
)

__all__ = [
    "AUGMENTATIONS",
    "DATASET_INFO_FILE",
    "DECODERS",
    "DEFAULT_FRAME_FPS",
    "DEMO_CLASSES",
    "DEMO_VARIANTS",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "NO_AUGMENTATION",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "ClipAugmentation",
    "EncodeSettings",
    "FrameFolderReader",
    "PrepareReport",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoInfo",
    "VideoReader",
    "VideoRecord",
    "VideoSplit",
    "available_decoders",
    "clip_span",
    "collate_clips",
    "decode_error",
    "demo_cache_dir",
    "discover_videos",
    "ensure_demo_dataset",
    "eval_clip_indices",
    "eval_transform",
    "open_video",
    "overview_clip_indices",
    "prepare_dataset",
    "read_clip",
    "train_clip_indices",
    "train_transform",
    "unopenable_videos",
    "videos_in",
    "write_video",
]
