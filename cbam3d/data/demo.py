"""The built-in demo data set: digit sprites whose motion is the class, among distractors that jitter at random.

Eight classes, each a kind of motion of one "target" sprite cut from scikit-learn's bundled digit images
(``load_digits``, no download): ``move_left``, ``move_right``, ``move_up``, ``move_down`` (2.5-4 px per frame),
``rotate_cw``, ``rotate_ccw`` (15-25 degrees per frame, clockwise as seen on screen), ``grow``, ``shrink``
(5-7 % per frame). Two to four distractor sprites, drawn from the same distribution of digits, colours and
sizes, wander by random steps and wobble, so the target is found by its motion only.

A single frame tells nothing about the class: for every class and every frame, the target's position is
uniform on the (wrap-around) frame, its angle uniform on the circle and its log-size uniform on a fixed range;
digit, colour, distractors and background come from one class-independent distribution. This holds because
every motion starts at a uniformly random phase of a cyclic path: translations wrap around the frame edges, and
sizes move along a saw-tooth (a growing sprite that reaches the largest size restarts at the smallest), so a
shrinking clip is a growing one played backwards, in distribution.

Videos are 64 x 64 pixels, 16 frames, H.264 / yuv420p mp4, written as a folder per class with UCF101-style split
lists (``splits/classInd.txt``, ``splits/trainlist01.txt``, ``splits/testlist01.txt``; train and test use
disjoint sets of digit images), so they load through :func:`cbam3d.data.discover_videos` like users' data.
The root's ``cbam3d_dataset.json`` says ``"flip_safe": false``: a mirror image swaps left/right and cw/ccw.

The **hard** variant (``variant="hard"``, cached separately) is built so that motion alone is not enough: the
target must first be found. Two or three distractors each perform one of the eight class motions themselves
(drawn at random, independently of the clip's class), so every clip shows several class motions at once. The
target is the one sprite drawn at full brightness; each distractor's colour value is 35-60 % of the target's
(hue and saturation from the same distribution for all), and every frame's overall brightness flickers by a
random factor in [0.8, 1.2], so the target is singled out only by its brightness relative to the other sprites
of the same frame. A single frame still tells nothing about the class: every sprite's path is a class path
with the uniform per-frame marginals above, and the sprites' looks do not depend on the class. Its default
size is 120 training and 40 test videos per class. (A network that cannot tell the target apart can only pick
one of the motions it sees, about a quarter to a third right; one that finds it is back to the standard task.)
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cbam3d.utils.atomic import check_output_folder
from cbam3d.utils.errors import UsageError
from cbam3d.utils.threads import torch_threads

from .discovery import DATASET_INFO_FILE
from .encoding import write_video

__all__ = [
    "DEMO_CLASSES",
    "DEMO_VARIANTS",
    "DEMO_VERSION",
    "demo_cache_dir",
    "ensure_demo_dataset",
    "render_demo_video",
    "sample_target_path",
]

DEMO_CLASSES = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw", "grow", "shrink")
#: Bumped whenever the generator's output changes, so cached copies of older versions are not reused.
DEMO_VERSION = 1
#: "standard": distractors that wander at random; "hard": distractors that perform class motions (module doc).
DEMO_VARIANTS = ("standard", "hard")
_DEFAULT_SIZES = {"standard": (80, 20), "hard": (120, 40)}  # (train, test) videos per class
DEMO_SIZE = 64
DEMO_FRAMES = 16
DEMO_FPS = 16
_SPRITE_HALF_WIDTH = 11.0  # pixels from a sprite's centre to its 8x8 image's edge, at scale 1
_LOG_SCALE_MIN, _LOG_SCALE_MAX = math.log(0.5), math.log(1.6)
_SPEED_PX = (2.5, 4.0)
_TURN_RAD = (math.radians(15), math.radians(25))
_GROWTH_LOG = (0.05, 0.07)
_DISTRACTORS = (2, 4)
_JITTER_PX, _WOBBLE_RAD = 0.8, 0.06
_HARD_DISTRACTORS = (2, 3)
_HARD_DISTRACTOR_VALUE = (0.35, 0.6)  # a distractor's colour value relative to the target's
_HARD_FLICKER = 0.2  # every frame's brightness is scaled by a factor in [1 - flicker, 1 + flicker]


def demo_cache_dir() -> Path:
    """``$CBAM3D_CACHE``, else ``$XDG_CACHE_HOME/cbam3d``, else ``~/.cache/cbam3d``."""
    if os.environ.get("CBAM3D_CACHE"):
        return Path(os.environ["CBAM3D_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cbam3d"
    return Path.home() / ".cache" / "cbam3d"


def _digit_images() -> np.ndarray:
    """scikit-learn's 1797 bundled 8x8 digit images as float32 alpha masks in [0, 1]."""
    # Deferred: scikit-learn is slow to import and only the first generation of the demo set needs it.
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)


def _random_colour(rng: np.random.Generator, relative_value: float = 1.0) -> np.ndarray:
    hue, saturation, value = rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.75, 1.0)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value * relative_value)) * 255


def _cyclic_log_scale(rng: np.random.Generator, rate: float) -> np.ndarray:
    """Log-scale per frame on a saw-tooth with a uniform random phase (rate > 0 grows, < 0 shrinks)."""
    span = _LOG_SCALE_MAX - _LOG_SCALE_MIN
    phase = rng.uniform(0, span)
    return _LOG_SCALE_MIN + np.mod(phase + rate * np.arange(DEMO_FRAMES), span)


def sample_target_path(rng: np.random.Generator, class_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (T, 2) as (x, y), angle (T,) and log-scale (T,) of the target for one clip of ``class_name``."""
    t = np.arange(DEMO_FRAMES)[:, None]
    centre = rng.uniform(0, DEMO_SIZE, size=2) + np.zeros((DEMO_FRAMES, 2))
    angle = np.full(DEMO_FRAMES, rng.uniform(0, 2 * math.pi))
    log_scale = np.full(DEMO_FRAMES, rng.uniform(_LOG_SCALE_MIN, _LOG_SCALE_MAX))
    kind, _, direction = class_name.partition("_")
    if kind == "move":
        unit = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
        centre = centre + t * rng.uniform(*_SPEED_PX) * np.array(unit, dtype=float)
    elif kind == "rotate":
        sign = 1.0 if direction == "cw" else -1.0  # y points down, so a growing angle turns clockwise on screen
        angle = angle + sign * rng.uniform(*_TURN_RAD) * t[:, 0]
    else:
        log_scale = _cyclic_log_scale(rng, rng.uniform(*_GROWTH_LOG) * (1.0 if class_name == "grow" else -1.0))
    return centre, angle, log_scale


def _distractor_path(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = rng.normal(0, _JITTER_PX, size=(DEMO_FRAMES, 2))
    steps[0] = 0
    centre = rng.uniform(0, DEMO_SIZE, size=2) + np.cumsum(steps, axis=0)
    wobble = rng.normal(0, _WOBBLE_RAD, size=DEMO_FRAMES)
    wobble[0] = 0
    angle = rng.uniform(0, 2 * math.pi) + np.cumsum(wobble)
    log_scale = np.full(DEMO_FRAMES, rng.uniform(_LOG_SCALE_MIN, _LOG_SCALE_MAX))
    return centre, angle, log_scale


def _sprite_alphas(images: np.ndarray, centre: np.ndarray, angle: np.ndarray, log_scale: np.ndarray) -> torch.Tensor:
    """Alpha (S, T, H, W) of S sprites (images (S, 8, 8)) drawn on a wrap-around canvas along their paths.

    ``centre`` (S, T, 2) holds (x, y) in pixels, y pointing down; ``angle`` and ``log_scale`` are (S, T).
    """
    sprites, frames = angle.shape
    pixels = torch.arange(DEMO_SIZE, dtype=torch.float32) + 0.5
    centre_t = torch.from_numpy(centre).float().reshape(-1, 2, 1, 1)
    half = DEMO_SIZE / 2
    dx = torch.remainder(pixels.view(1, 1, -1) - centre_t[:, 0] + half, DEMO_SIZE) - half  # (S*T, 1, W)
    dy = torch.remainder(pixels.view(1, -1, 1) - centre_t[:, 1] + half, DEMO_SIZE) - half  # (S*T, H, 1)
    angle_t = torch.from_numpy(angle).float().reshape(-1, 1, 1)
    radius = _SPRITE_HALF_WIDTH * torch.from_numpy(np.exp(log_scale)).float().reshape(-1, 1, 1)
    cos, sin = torch.cos(angle_t) / radius, torch.sin(angle_t) / radius
    grid = torch.stack([cos * dx + sin * dy, -sin * dx + cos * dy], dim=-1)  # sprite coordinates, (S*T, H, W, 2)
    source = torch.from_numpy(images).float()[:, None, None].expand(sprites, frames, 1, 8, 8).reshape(-1, 1, 8, 8)
    alpha = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return alpha.view(sprites, frames, DEMO_SIZE, DEMO_SIZE)


def render_demo_video(
    class_name: str, rng: np.random.Generator, digits: np.ndarray, *, variant: str = "standard"
) -> np.ndarray:
    """One demo clip: uint8 RGB frames (16, 64, 64, 3) showing ``class_name``'s motion among distractors.

    Args:
        class_name: one of :data:`DEMO_CLASSES`.
        rng: the clip's random generator (the only source of randomness).
        digits: the pool of 8x8 sprite alpha masks to draw from, (N, 8, 8) in [0, 1].
        variant: one of :data:`DEMO_VARIANTS` (see the module documentation).
    """
    if class_name not in DEMO_CLASSES:
        raise ValueError(f"class_name must be one of {DEMO_CLASSES}, got {class_name!r}")
    if variant not in DEMO_VARIANTS:
        raise ValueError(f"variant must be one of {DEMO_VARIANTS}, got {variant!r}")
    paths = [sample_target_path(rng, class_name)]
    if variant == "hard":
        count = rng.integers(_HARD_DISTRACTORS[0], _HARD_DISTRACTORS[1] + 1)
        paths += [sample_target_path(rng, DEMO_CLASSES[rng.integers(len(DEMO_CLASSES))]) for _ in range(count)]
    else:
        paths += [_distractor_path(rng) for _ in range(rng.integers(_DISTRACTORS[0], _DISTRACTORS[1] + 1))]
    order = rng.permutation(len(paths))  # random depth order: the target is not always on top
    images = digits[rng.integers(len(digits), size=len(paths))]
    if variant == "hard":
        relative = [1.0, *rng.uniform(*_HARD_DISTRACTOR_VALUE, size=len(paths) - 1)]
        colours = torch.from_numpy(np.stack([_random_colour(rng, value) for value in relative])).float()
    else:
        colours = torch.from_numpy(np.stack([_random_colour(rng) for _ in paths])).float()
    background = rng.uniform(10, 50) + rng.normal(0, 3, size=(DEMO_SIZE, DEMO_SIZE, 1))
    alphas = _sprite_alphas(images[order], *(np.stack([p[i] for p in paths])[order] for i in range(3)))
    canvas = torch.from_numpy(background).float().expand(DEMO_FRAMES, DEMO_SIZE, DEMO_SIZE, 3)
    for alpha, colour in zip(alphas[..., None], colours[order]):
        canvas = canvas * (1 - alpha) + colour * alpha
    if variant == "hard":
        gains = 1 + rng.uniform(-_HARD_FLICKER, _HARD_FLICKER, size=DEMO_FRAMES)
        canvas = canvas * torch.from_numpy(gains).float().view(-1, 1, 1, 1)
    return canvas.round().clamp_(0, 255).to(torch.uint8).numpy()


def _write_dataset(
    folder: Path, seed: int, train_per_class: int, test_per_class: int, *, variant: str, progress: bool
) -> None:
    # Rendering is many tiny tensor operations: extra threads only add synchronisation (10x slower on a busy CPU).
    with torch_threads(1):
        _write_videos_and_lists(folder, seed, train_per_class, test_per_class, variant=variant, progress=progress)
    info = _dataset_info(seed, train_per_class, test_per_class, variant)
    (folder / DATASET_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")  # written last: marks completion


def _write_videos_and_lists(
    folder: Path, seed: int, train_per_class: int, test_per_class: int, *, variant: str, progress: bool
) -> None:
    digits = _digit_images()
    pools = {"train": digits[0::2], "test": digits[1::2]}
    (folder / "splits").mkdir(parents=True)
    train_lines, test_lines = [], []
    total = len(DEMO_CLASSES) * (train_per_class + test_per_class)
    # on stderr even when it is not a terminal (logs, CI): a first generation without output looks hung
    bar = tqdm(total=total, desc="demo videos", unit="video", file=sys.stderr, disable=not progress)
    for label, class_name in enumerate(DEMO_CLASSES):
        (folder / class_name).mkdir()
        for index in range(train_per_class + test_per_class):
            part = "train" if index < train_per_class else "test"
            rng = np.random.default_rng([seed, label, index])
            relative = f"{class_name}/{class_name}_{index:03d}.mp4"
            write_video(
                folder / relative, render_demo_video(class_name, rng, pools[part], variant=variant), fps=DEMO_FPS
            )
            (train_lines if part == "train" else test_lines).append(
                f"{relative} {label + 1}" if part == "train" else relative
            )
            bar.update()
    bar.close()
    splits = folder / "splits"
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(DEMO_CLASSES)))
    (splits / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (splits / "testlist01.txt").write_text("\n".join(test_lines) + "\n")


def _dataset_info(seed: int, train_per_class: int, test_per_class: int, variant: str) -> dict:
    info = {
        "name": "cbam3d-demo" if variant == "standard" else f"cbam3d-demo-{variant}",
        "version": DEMO_VERSION,
        "seed": seed,
        "train_per_class": train_per_class,
        "test_per_class": test_per_class,
        "classes": list(DEMO_CLASSES),
        "frames": DEMO_FRAMES,
        "size": DEMO_SIZE,
        "fps": DEMO_FPS,
        "flip_safe": False,
    }
    if variant != "standard":  # the standard set's info stays as it was, so its cached copies stay valid
        info["variant"] = variant
    return info


def _existing_matches(folder: Path, expected: dict) -> bool:
    """True if ``folder`` holds a complete demo set made with ``expected``; raises if it holds something else."""
    info_file = folder / DATASET_INFO_FILE
    if not info_file.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise ValueError(f"{folder} is not empty and is not a cbam3d demo data set; give an empty or new folder")
        return False
    try:
        info = json.loads(info_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {info_file} ({error}); delete {folder} to regenerate it") from error
    if info != expected:
        differing = sorted(k for k in expected if info.get(k) != expected[k])
        raise ValueError(
            f"{folder} holds a demo data set made with other settings ({differing} differ); "
            f"delete it or choose another folder"
        )
    return True


def ensure_demo_dataset(
    root: str | Path | None = None,
    *,
    variant: str = "standard",
    seed: int = 0,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    progress: bool = False,
) -> Path:
    """Path to the demo data set, generating it first if it is not there yet (no download).

    Generating the default standard set, 8 x (80 + 20) videos, takes about 10-25 s on two CPU cores; the hard
    set, 8 x (120 + 40) videos, about 30 s; later calls return at once.

    Args:
        root: where the data set goes; None for ``demo_cache_dir() / "demo-v<version>-seed<seed>-<train>-<test>"``
            (``"demo-hard-v..."`` for the hard variant). An existing, empty folder is used; a folder holding
            anything else is refused.
        variant: ``"standard"`` or ``"hard"`` (see the module documentation).
        seed: the data set is a deterministic function of the seed (and the generator version).
        train_per_class, test_per_class: videos per class in the train and test lists; None for the variant's
            default (80 and 20 standard, 120 and 40 hard).
        progress: when the set is generated, say where on stderr (one line) and show a progress bar there.

    Generation writes into a temporary sibling folder that is renamed into place when complete, so an
    interrupted run never leaves a partial data set, and concurrent callers end up sharing one copy.
    """
    if variant not in DEMO_VARIANTS:
        raise ValueError(f"variant must be one of {DEMO_VARIANTS}, got {variant!r}")
    default_train, default_test = _DEFAULT_SIZES[variant]
    train_per_class = default_train if train_per_class is None else train_per_class
    test_per_class = default_test if test_per_class is None else test_per_class
    for name, value in {"seed": seed, "train_per_class": train_per_class, "test_per_class": test_per_class}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} int, got {value!r}")
    if root is None:
        prefix = "demo" if variant == "standard" else f"demo-{variant}"
        target = demo_cache_dir() / f"{prefix}-v{DEMO_VERSION}-seed{seed}-{train_per_class}-{test_per_class}"
    else:
        target = Path(root).expanduser()
    expected = _dataset_info(seed, train_per_class, test_per_class, variant)
    if _existing_matches(target, expected):
        return target
    try:
        check_output_folder(target.parent)
    except ValueError as error:
        if root is None:
            raise UsageError(
                f"the demo set's cache folder cannot hold it: {error}; set CBAM3D_CACHE to a writable folder"
            ) from None
        raise UsageError(f"the demo set's folder cannot be written: {error}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if progress:
        videos = len(DEMO_CLASSES) * (train_per_class + test_per_class)
        print(
            f"generating the demo data set ({videos} videos) into {target}: done once, later runs reuse it",
            file=sys.stderr,
            flush=True,
        )
    try:
        _write_dataset(partial, seed, train_per_class, test_per_class, variant=variant, progress=progress)
        try:
            os.rename(partial, target)  # atomic; replaces `target` only if it is an empty folder
        except OSError:
            if not _existing_matches(target, expected):  # not a concurrent finished copy: a real failure
                raise
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return target
