"""Settings and fixtures that several test folders share: ``device`` (the CPU, and CUDA for ``pytest -m gpu``),
``randomize``, the tiny training run's flags (``tiny_run``), ``tiny_checkpoint``, ``make_noise_video``,
``usage_error`` and ``load_script``. Fixtures that one folder uses live in that folder's conftest.py.

Tests marked ``gpu`` are left out of the default run (pyproject.toml's addopts) and skipped, with the reason, where
no CUDA device is available: ``pytest -m gpu --collect-only`` lists them on any machine."""

import contextlib
import importlib.util
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
