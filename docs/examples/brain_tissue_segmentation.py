"""Brain tissue segmentation on a real MRI: MONAI's UNet and SegResNet, plain and with attention retrofitted.

Data: the MNI ICBM152 2009 nonlinear symmetric template (release a) that nilearn's wheel ships in
``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz`` (no download): a T1-weighted
average of 152 adult brains, 197 x 233 x 189 voxels at 1 mm, with grey- and white-matter probability maps on the
same grid. nilearn's loaders (``load_mni152_template``, ``load_mni152_gm_template``, ``load_mni152_wm_template``)
read these files and resample them; ``--resolution 2`` (the default, to keep the CPU cost sane) gives
99 x 117 x 95 voxels of 2 mm.

Licence: nilearn's description of the data set (``nilearn/datasets/description/icbm152_2009.rst``) gives its
source (http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009; Fonov et al., NeuroImage 2009 and 2011;
Collins et al. 1999) and says "License: unknown". The terms McGill's NIST lab publishes with the ICBM 2009
templates are a permissive notice, in substance: copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging
Centre, Montreal Neurological Institute, McGill University; use, copying, modification and distribution for any
purpose without fee are permitted provided that the copyright notice appears in all copies; the data come "as
is", without express or implied warranty. This example redistributes nothing: it reads the copy in nilearn's
wheel.

Target: three classes, background (0), grey matter (1), white matter (2): each voxel takes the largest of
``(1 - gm - wm, gm, wm)``, so a voxel is tissue where that tissue's probability beats both the other tissue's and
the rest (cerebrospinal fluid and everything outside the brain count as background).

Split: the template is exactly left-right symmetric (the "sym" in its name: one hemisphere is the mirror image
of the other), so a left/right split would validate on a mirrored copy of the training data. The volume is
instead cut across the anterior-posterior axis at the middle of the brain: the posterior block (occipital and
parietal lobes, cerebellum) trains, the anterior block (frontal and temporal lobes) validates. A gap of half a
patch (``--patch // 2`` voxels: 12 voxels = 24 mm by default) between them belongs to neither. Training patches
are cut from the training block alone and the sliding window runs on the validation block alone, so no
validation voxel enters a training input or its receptive field; the gap also keeps the validation border away
from the voxels next to the training tissue.

Training: patches of ``--patch``^3 voxels, their centres balanced over the three classes
(``RandCropByLabelClassesd``), augmented with MONAI's transforms (left-right flips: tissue classes have no side;
small rotations and scalings, a smooth bias field, intensity scaling, Gaussian noise); Adam with a cosine
learning-rate decay on DiceCE loss. For a seed, every configuration starts from the same network weights (the
attention modules are added on top) and sees the same patches.

Metric: Dice of grey and of white matter on the whole validation block (MONAI's ``sliding_window_inference``,
Gaussian-weighted windows of the patch size overlapping by a quarter, then ``DiceMetric``); the score is their
mean, background excluded.

Output: one folder per run ``OUTPUT/<network>-<attention>-seed<S>`` with its ``result.json`` (written
atomically: a run is finished when it exists; a second call reuses it, so an interrupted grid continues where
it stopped) and the prediction of one validation slice; then ``OUTPUT/results.json``, ``results.csv``,
``results.md`` and ``results.png`` with the statistics of ``cbam3d ablate`` (mean ± std over seeds, the
difference to no attention with a 95 % Welch interval, parameters, time per step, peak memory), and
``OUTPUT/slices.png``: one validation slice, its T1, target and each configuration's prediction.

    python docs/examples/brain_tissue_segmentation.py --output runs/brain   # the grid in docs/examples/brain.md
    python docs/examples/brain_tissue_segmentation.py --attention none cbam --seeds 0 --steps 60 --patch 16
    python docs/examples/brain_tissue_segmentation.py --time-steps 20 --threads 1   # time per step, side by side

Needs ``pip install cbam3d[examples]`` (MONAI and nilearn).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.networks.nets import SegResNet, UNet
from monai.networks.utils import one_hot
from monai.transforms import (
    ClassesToIndicesd,
    Compose,
    RandAffined,
    RandBiasFieldd,
    RandCropByLabelClassesd,
    RandFlipd,
    RandGaussianNoised,
    RandScaleIntensityd,
)
from nilearn import datasets
from torch import Tensor, nn

from cbam3d.inference.plots import pyplot, save_png
from cbam3d.models import add_attention
from cbam3d.training.ablation import Column, ReportLayout, write_tables
from cbam3d.utils.atomic import atomic_write, atomic_write_json

NETWORKS = ("unet", "segresnet")
ATTENTIONS = ("none", "se", "cbam", "bam", "eca")
CLASSES = ("background", "grey matter", "white matter")
# BAM's channel branch normalizes over the batch by default, which cannot train on one patch.
ATTENTION_OPTIONS = {"bam": {"channel_norm": "layer"}}
UNET_LEVELS = 4
RESULT_FILE = "result.json"
SLICE_FILE = "validation_slice.npy"


@dataclass(frozen=True)
class Settings:
    """What every run of a grid shares; a run folder made with other settings is not reused."""

    resolution: int
    patch: int
    batch_size: int
    steps: int
    width: int
    learning_rate: float


@dataclass(frozen=True)
class Run:
    """One network with one attention (``none``: without) and one seed."""

    network: str
    attention: str
    seed: int

    @property
    def configuration(self) -> str:
        return f"{self.network}-{self.attention}"

    @property
    def folder(self) -> str:
        return f"{self.configuration}-seed{self.seed}"


@dataclass(frozen=True)
class Brain:
    """The template cut into a training and a validation block along the anterior-posterior axis.

    ``*_image``: T1 ``(1, X, Y, Z)`` float32 in [0, 1]; ``*_label``: classes ``(1, X, Y, Z)`` int64; the blocks
    differ in extent along ``axis``. ``gap``: voxels between them that belong to neither.
    """

    train_image: np.ndarray
    train_label: np.ndarray
    validation_image: np.ndarray
    validation_label: np.ndarray
    axis: int
    gap: int


def tissue_labels(grey: np.ndarray, white: np.ndarray) -> np.ndarray:
    """Classes ``(X, Y, Z)`` int64 from the probability maps: the largest of (1 - grey - white, grey, white)."""
    rest = np.clip(1.0 - grey - white, 0.0, 1.0)
    return np.stack([rest, grey, white]).argmax(0).astype(np.int64)


def load_brain(*, resolution: int, patch: int) -> Brain:
    """nilearn's bundled template at ``resolution`` mm, cropped to the brain (plus a few voxels), split in two."""
    t1 = datasets.load_mni152_template(resolution=resolution)
    image = t1.get_fdata(dtype=np.float32)
    labels = tissue_labels(
        datasets.load_mni152_gm_template(resolution=resolution).get_fdata(dtype=np.float32),
        datasets.load_mni152_wm_template(resolution=resolution).get_fdata(dtype=np.float32),
    )
    border = 4
    box = tuple(
        slice(max(0, int(np.min(i)) - border), int(np.max(i)) + 1 + border) for i in np.nonzero(labels)
    )  # fmt: skip
    image, labels = image[box], labels[box]
    axis = next(i for i, code in enumerate(nibabel.aff2axcodes(t1.affine)) if code in "AP")
    gap = patch // 2
    cut = labels.shape[axis] // 2 - gap // 2
    blocks = [(0, cut), (cut + gap, labels.shape[axis])]
    if nibabel.aff2axcodes(t1.affine)[axis] == "P":  # index 0 anterior: the posterior block is the second
        blocks.reverse()
    (train, validation) = (
        tuple(slice(*block) if i == axis else slice(None) for i in range(3)) for block in blocks
    )  # fmt: skip
    return Brain(
        train_image=image[train][None],
        train_label=labels[train][None],
        validation_image=image[validation][None],
        validation_label=labels[validation][None],
        axis=axis,
        gap=gap,
    )


def augmentation(*, patch: int, batch_size: int, seed: int) -> Compose:
    """``batch_size`` augmented patches of ``patch``^3 voxels from ``{"image", "label", "label_cls_indices"}``."""
    keys = ("image", "label")
    transform = Compose(
        [
            RandCropByLabelClassesd(
                keys, label_key="label", spatial_size=(patch,) * 3, num_classes=len(CLASSES), ratios=[1] * len(CLASSES),
                num_samples=batch_size, indices_key="label_cls_indices",
            ),
            RandFlipd(keys, prob=0.5, spatial_axis=0),  # left-right
            RandAffined(
                keys, prob=0.5, rotate_range=(0.2,) * 3, scale_range=(0.1,) * 3, mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandBiasFieldd("image", prob=0.3, coeff_range=(0.0, 0.1)),
            RandScaleIntensityd("image", factors=0.1, prob=0.5),
            RandGaussianNoised("image", prob=0.3, std=0.02),
        ]
    )  # fmt: skip
    transform.set_random_state(seed)
    return transform


def unet_stage_outputs(levels: int = UNET_LEVELS) -> list[str]:
    """The names of the modules whose outputs feed UNet's downsamplings (where stage attention, BAM, goes).

    MONAI's UNet nests each level in ``<level>.1.submodule``; ``<level>.0`` is the level's encoder block.
    """
    return ["model." + "1.submodule." * level + "0" for level in range(levels - 1)]


def build_network(run: Run, settings: Settings) -> nn.Module:
    """The run's network; for a seed the same base weights whatever the attention, which is added on top."""
    torch.manual_seed(run.seed)
    width = settings.width
    if run.network == "unet":
        model = UNet(
            spatial_dims=3, in_channels=1, out_channels=len(CLASSES),
            channels=tuple(width * 2**level for level in range(UNET_LEVELS)), strides=(2,) * (UNET_LEVELS - 1),
            num_res_units=2,
        )  # fmt: skip
    else:
        model = SegResNet(spatial_dims=3, in_channels=1, out_channels=len(CLASSES), init_filters=width)
    if run.attention != "none":
        # UNet's residual units are found by at="auto"; BAM goes before downsamplings, which UNet's nesting
        # hides from the tracer, so they are named. SegResNet's places are all found automatically.
        places = unet_stage_outputs() if (run.network, run.attention) == ("unet", "bam") else "auto"
        add_attention(model, run.attention, ATTENTION_OPTIONS.get(run.attention), at=places)
    return model


@torch.no_grad()
def segment(model: nn.Module, image: np.ndarray, *, patch: int) -> Tensor:
    """Classes ``(X, Y, Z)`` of a whole block ``image`` ``(1, X, Y, Z)`` by Gaussian-weighted sliding windows."""
    model.eval()
    logits = sliding_window_inference(
        torch.from_numpy(image)[None], roi_size=(patch,) * 3, sw_batch_size=4, predictor=model, overlap=0.25,
        mode="gaussian",
    )  # fmt: skip
    model.train()
    return logits.argmax(1)[0]


def tissue_dice(predicted: Tensor, target: np.ndarray) -> tuple[float, float]:
    """Dice of grey and of white matter between classes ``predicted`` ``(X, Y, Z)`` and ``target`` ``(1, X, Y, Z)``."""
    metric = DiceMetric(include_background=False, reduction="mean_batch")
    metric(
        one_hot(predicted[None, None], len(CLASSES)), one_hot(torch.from_numpy(target)[None], len(CLASSES))
    )  # fmt: skip
    grey, white = metric.aggregate().tolist()
    return grey, white


def _reset_peak_memory() -> None:
    """Restart the count of the process's peak resident memory (Linux), so that each run's peak is its own."""
    with contextlib.suppress(OSError):  # elsewhere the peak is the process's since it started
        Path("/proc/self/clear_refs").write_text("5")


def _peak_memory_mb() -> float | None:
    """The process's peak resident memory (MiB) on Linux, else None."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), None)


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_function: nn.Module, images: Tensor,
                  labels: Tensor) -> Tensor:  # fmt: skip
    """Forward, backward and update on ``images`` ``(B, 1, P, P, P)`` and classes ``labels`` ``(B, 1, P, P, P)``;
    the loss."""
    loss = loss_function(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def time_steps(runs: list[Run], settings: Settings, *, steps: int, warm_up: int = 3) -> dict[str, float]:
    """Median milliseconds of one training step per configuration, measured side by side: the networks of
    ``runs`` step in turn, ``warm_up`` untimed rounds then ``steps`` timed ones, on the same random batch of
    patches, so that the machine's load falls on all of them alike."""
    generator = torch.Generator().manual_seed(0)
    shape = (settings.batch_size, 1, *(settings.patch,) * 3)
    images = torch.randn(shape, generator=generator)
    labels = torch.randint(len(CLASSES), shape, generator=generator)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    models = {run.configuration: build_network(run, settings) for run in runs}
    optimizers = {
        name: torch.optim.Adam(model.parameters(), lr=settings.learning_rate) for name, model in models.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(warm_up + steps):
        for name, model in models.items():
            start = time.perf_counter()
            training_step(model, optimizers[name], loss_function, images, labels)
            if round_ >= warm_up:
                seconds[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(times) for name, times in seconds.items()}


def train(run: Run, brain: Brain, settings: Settings) -> tuple[dict[str, Any], np.ndarray]:
    """Train one run; its result (Dice before and after, losses, costs) and its prediction of the middle
    validation slice across ``brain.axis``, ``(X, Z)`` int64."""
    _reset_peak_memory()
    model = build_network(run, settings)
    samples = augmentation(patch=settings.patch, batch_size=settings.batch_size, seed=run.seed)
    training_block = ClassesToIndicesd("label", num_classes=len(CLASSES))(
        {"image": brain.train_image, "label": brain.train_label}
    )  # fmt: skip
    grey_before, white_before = tissue_dice(segment(model, brain.validation_image, patch=settings.patch),
                                            brain.validation_label)  # fmt: skip
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps)
    losses, network_seconds = [], 0.0
    for _ in range(settings.steps):
        batch = samples(training_block)
        images = torch.stack([torch.as_tensor(sample["image"]) for sample in batch]).float()
        labels = torch.stack([torch.as_tensor(sample["label"]) for sample in batch]).long()
        start = time.perf_counter()
        loss = training_step(model, optimizer, loss_function, images, labels)
        schedule.step()
        network_seconds += time.perf_counter() - start
        losses.append(loss.item())
    predicted = segment(model, brain.validation_image, patch=settings.patch)
    grey, white = tissue_dice(predicted, brain.validation_label)
    tenth = max(1, settings.steps // 10)
    result = {
        "configuration": run.configuration,
        "network": run.network,
        "attention": run.attention,
        "seed": run.seed,
        "settings": asdict(settings),
        "dice": (grey + white) / 2,
        "dice_grey": grey,
        "dice_white": white,
        "dice_before": (grey_before + white_before) / 2,
        "loss_first": float(np.mean(losses[:tenth])),
        "loss_last": float(np.mean(losses[-tenth:])),
        "milliseconds_per_step": 1000 * network_seconds / settings.steps,
        "peak_memory_mb": _peak_memory_mb(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    middle = predicted.shape[brain.axis] // 2
    return result, predicted.select(brain.axis, middle).numpy()


def baseline_of(configuration: str) -> str:
    """The configuration without attention of the same network: ``unet-cbam`` -> ``unet-none``."""
    return configuration.rsplit("-", 1)[0] + "-none"


DICE = Column("dice", "Dice", "%", 0.01)
STEP_TIME = Column("milliseconds_per_step", "time per step", "ms", digits=0)
LAYOUT = ReportLayout(
    scores=(DICE, Column("dice_grey", "Dice GM", "%", 0.01), Column("dice_white", "Dice WM", "%", 0.01)),
    costs=(Column("parameters", "params", "M", 1e6, 3), STEP_TIME,
           Column("peak_memory_mb", "peak memory", "MiB", digits=0)),
    plot_cost=STEP_TIME,
    plot_cost_label="milliseconds per training step (forward, backward, update)",
    score_title="Validation Dice, mean of GM and WM",
    reading="Dice: on the whole validation block (the anterior half of the brain), grey matter (GM), white "
    "matter (WM) and their mean (background excluded), in percent, mean ± sample standard deviation over "
    "seeds. Dice vs none: difference of the mean Dice to the same network without attention, in points, with "
    "a 95% Welch t interval; an interval that contains 0 shows no difference. Time per step: forward, "
    "backward and update of one batch of patches (augmentation excluded); peak memory: the process's resident "
    "set size during the run (CPU).",
    csv_columns=("configuration", "network", "attention", "seed", "dice", "dice_grey", "dice_white", "dice_before",
                 "loss_first", "loss_last", "milliseconds_per_step", "peak_memory_mb", "parameters"),
    baseline_of=baseline_of,
)  # fmt: skip


def read_result(folder: Path) -> dict[str, Any] | None:
    """The run's result, or None when it has not finished."""
    try:
        return json.loads((folder / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_grid(runs: list[Run], brain: Brain, settings: Settings, output: Path) -> list[dict[str, Any]]:
    """Train every run without a result under ``output``; every run's result, in grid order."""
    results = []
    for index, run in enumerate(runs, start=1):
        folder = output / run.folder
        prefix = f"[{index}/{len(runs)}] {run.folder}:"
        result = read_result(folder)
        if result is None:
            print(f"{prefix} training", flush=True)
            start = time.perf_counter()
            result, validation_slice = train(run, brain, settings)
            result["seconds"] = time.perf_counter() - start
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / SLICE_FILE, lambda file, array=validation_slice: np.save(file, array))
            atomic_write_json(result, folder / RESULT_FILE)  # last: the run is finished once this exists
        else:
            print(f"{prefix} finished earlier, reused", flush=True)
        print(
            f"{prefix} Dice {result['dice_before']:.3f} -> {result['dice']:.3f} (GM {result['dice_grey']:.3f}, "
            f"WM {result['dice_white']:.3f}), {result['milliseconds_per_step']:.0f} ms/step",
            flush=True,
        )
        results.append(result)
    return results


def plot_slices(runs: list[Run], brain: Brain, output: Path) -> Path:
    """``slices.png``: the middle validation slice: T1, target, and each configuration's prediction (first seed)."""
    plt = pyplot()
    middle = brain.validation_image.shape[1 + brain.axis] // 2
    first_seed = {}
    for run in runs:
        first_seed.setdefault(run.configuration, run)
    # (title, picture, the value shown white): classes in grey levels, background black, white matter white
    panels = [("T1", brain.validation_image[0].take(middle, brain.axis), 1),
              ("target", brain.validation_label[0].take(middle, brain.axis), len(CLASSES) - 1)]  # fmt: skip
    for configuration, run in first_seed.items():
        result = read_result(output / run.folder)
        label = f"{configuration}\nDice {result['dice']:.3f} (seed {run.seed})"
        panels.append((label, np.load(output / run.folder / SLICE_FILE), len(CLASSES) - 1))
    columns = min(len(panels), 7)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows), squeeze=False)
    for axis_, (title, picture, white) in zip(axes.flat, panels):
        axis_.imshow(np.rot90(picture), cmap="gray", vmin=0, vmax=white)
        axis_.set_title(title, fontsize=8)
    for axis_ in axes.flat:
        axis_.axis("off")
    figure.suptitle("Coronal validation slice: background black, grey matter grey, white matter white", fontsize=9)
    figure.tight_layout()
    return save_png(figure, output / "slices.png")


def write_results(runs: list[Run], results: list[dict[str, Any]], brain: Brain, settings: Settings,
                  output: Path) -> list[dict[str, Any]]:  # fmt: skip
    """``results.json``, ``results.csv``, ``results.md``, ``results.png`` and ``slices.png`` under ``output``."""
    summary = write_tables(output, results, layout=LAYOUT, runs_total=len(runs))
    atomic_write_json({"settings": asdict(settings), "runs": results, "summary": summary}, output / "results.json")
    plot_slices(runs, brain, output)
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--network", nargs="+", choices=NETWORKS, default=["unet"], help="default: unet")
    parser.add_argument("--attention", nargs="+", choices=ATTENTIONS, default=list(ATTENTIONS),
                        help="none: without attention, the baseline; default: all")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="S", help="default: 0 1 2")
    parser.add_argument("--steps", type=int, default=500, help="training steps per run (default 500)")
    parser.add_argument("--patch", type=int, default=24, help="patch edge in voxels, a multiple of 8 (default 24)")
    parser.add_argument("--batch-size", type=int, default=2, help="patches per step (default 2)")
    parser.add_argument("--width", type=int, default=16,
                        help="channels at full resolution: UNet's first level, SegResNet's init_filters; a "
                        "multiple of 8 (default 16)")  # fmt: skip
    parser.add_argument("--resolution", type=int, choices=(1, 2), default=2, help="voxel size in mm (default 2)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's, decayed to 0 (default 3e-3)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=Path("runs/brain"), help="default: runs/brain")
    parser.add_argument("--time-steps", type=int, metavar="N",
                        help="instead of training: time N training steps of each configuration (first seed) side "
                        "by side in this process, print the medians and write OUTPUT/step_times.json")  # fmt: skip
    args = parser.parse_args(argv)
    if args.patch < 8 or args.patch % 8:
        parser.error(f"--patch must be a multiple of 8 (three halvings), got {args.patch}")
    if args.width < 8 or args.width % 8:
        parser.error(f"--width must be a multiple of 8 (SegResNet's 8 groups), got {args.width}")
    for flag in ("steps", "batch_size", "threads", "time_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be 0 or more, got {args.seeds}")
    if args.learning_rate <= 0:
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")
    args.settings = Settings(resolution=args.resolution, patch=args.patch, batch_size=args.batch_size,
                             steps=args.steps, width=args.width, learning_rate=args.learning_rate)  # fmt: skip
    args.runs = [
        Run(network, attention, seed)
        for network in dict.fromkeys(args.network)
        for attention in ["none", *dict.fromkeys(a for a in args.attention if a != "none")]
        if attention in args.attention
        for seed in dict.fromkeys(args.seeds)
    ]
    conflicts = [run.folder for run in args.runs if (r := read_result(args.output / run.folder)) is not None
                 and r["settings"] != asdict(args.settings)]  # fmt: skip
    if conflicts:
        parser.error(f"{args.output / conflicts[0]} holds a run made with other settings; use another --output "
                     "or delete it")  # fmt: skip
    return args


def report_step_times(args: argparse.Namespace) -> dict[str, Any]:
    """``--time-steps``: print each configuration's median time per step and its ratio to the same network
    without attention; write them to ``OUTPUT/step_times.json``."""
    first_seed = [run for run in args.runs if run.seed == args.runs[0].seed]
    medians = time_steps(first_seed, args.settings, steps=args.time_steps)
    ratios = {name: ms / medians[baseline_of(name)] for name, ms in medians.items() if baseline_of(name) in medians}
    for name, ms in medians.items():
        ratio = f", {ratios[name]:.2f}x {baseline_of(name)}" if name in ratios else ""
        print(f"{name}: {ms:.0f} ms per training step{ratio}")
    outcome = {"settings": asdict(args.settings), "steps": args.time_steps, "threads": torch.get_num_threads(),
               "milliseconds_per_step": medians, "ratio_to_no_attention": ratios}  # fmt: skip
    atomic_write_json(outcome, args.output / "step_times.json")
    return outcome


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the grid (reusing finished runs) and write its results; ``{"runs": [result], "summary": [...]}``."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.time_steps is not None:
        return report_step_times(args)
    brain = load_brain(resolution=args.resolution, patch=args.patch)
    shares = np.bincount(brain.validation_label.ravel(), minlength=len(CLASSES)) / brain.validation_label.size
    print(f"training block {brain.train_image.shape[1:]}, validation block {brain.validation_image.shape[1:]}, "
          f"gap {brain.gap} voxels ({brain.gap * args.resolution} mm); validation class shares "
          + ", ".join(f"{name} {share:.1%}" for name, share in zip(CLASSES, shares)))  # fmt: skip
    results = run_grid(args.runs, brain, args.settings, args.output)
    summary = write_results(args.runs, results, brain, args.settings, args.output)
    print(f"results: {args.output / 'results.md'}, {args.output / 'slices.png'}")
    return {"runs": results, "summary": summary}


if __name__ == "__main__":
    main()
