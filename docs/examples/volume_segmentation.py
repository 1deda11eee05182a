"""Volumetric segmentation: MONAI's residual UNet with and without CBAM retrofitted by ``add_attention``.

Both networks start from the same weights (same seed; the attention modules are added on top), see
the same synthetic volumes (MONAI's ``create_test_image_3d``: noisy spheres, no download) in the same
order for the same number of steps, and are scored by Dice on held-out volumes.

    python docs/examples/volume_segmentation.py                       # the figures in docs/networks.md
    python docs/examples/volume_segmentation.py --size 16 --steps 30  # a quick check

Needs ``pip install cbam3d[monai]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.data.synthetic import create_test_image_3d
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from torch import Tensor, nn

from cbam3d.models import add_attention


@dataclass(frozen=True)
class Result:
    """One training run: the mean loss of the first and last tenth of the steps, Dice before and after."""

    first_loss: float
    last_loss: float
    dice_before: float
    dice_after: float
    seconds: float


def make_volumes(count: int, *, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``count`` noisy volumes ``(count, 1, size, size, size)`` and their binary masks (same shape)."""
    rng = np.random.RandomState(seed)
    pairs = [
        create_test_image_3d(
            size, size, size, num_objs=6, rad_max=max(3, size // 6), rad_min=2, noise_max=0.6, num_seg_classes=1,
            random_state=rng,
        )
        for _ in range(count)
    ]  # fmt: skip
    images = torch.from_numpy(np.stack([image for image, _ in pairs]))[:, None].float()
    masks = torch.from_numpy(np.stack([mask for _, mask in pairs]))[:, None].float()
    return images, masks


def build_unet(*, width: int, seed: int) -> nn.Module:
    """MONAI's UNet with two residual units per level (three levels), the same weights for a given seed."""
    torch.manual_seed(seed)
    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=1,
        channels=(width, 2 * width, 4 * width),
        strides=(2, 2),
        num_res_units=2,
    )


@torch.no_grad()
def dice(model: nn.Module, images: Tensor, masks: Tensor) -> float:
    """Mean Dice of the thresholded predictions over the volumes (1 where both are empty)."""
    model.eval()
    predicted = (model(images) > 0).float()
    overlap = (predicted * masks).flatten(1).sum(1)
    total = (predicted + masks).flatten(1).sum(1)
    return torch.where(total > 0, 2 * overlap / total.clamp_min(1), torch.ones_like(total)).mean().item()


def train(model: nn.Module, data: tuple[Tensor, Tensor], held_out: tuple[Tensor, Tensor], *, steps: int,
          batch_size: int, seed: int) -> Result:  # fmt: skip
    """Adam on random batches drawn with ``seed``; Dice on ``held_out`` before and after."""
    start = time.perf_counter()
    dice_before = dice(model, *held_out)
    images, masks = data
    loss_fn = DiceCELoss(sigmoid=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(images), (batch_size,), generator=order)
        loss = loss_fn(model(images[batch]), masks[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tenth = max(1, steps // 10)
    return Result(
        first_loss=float(np.mean(losses[:tenth])),
        last_loss=float(np.mean(losses[-tenth:])),
        dice_before=dice_before,
        dice_after=dice(model, *held_out),
        seconds=time.perf_counter() - start,
    )


def compare(*, size: int, steps: int, batch_size: int, width: int, volumes: int, attention: str, seed: int) -> dict:
    """Train the plain UNet and the UNet with ``attention`` retrofitted; ``{"plain": Result, attention: Result}``."""
    data = make_volumes(volumes, size=size, seed=seed)
    held_out = make_volumes(max(2, volumes // 4), size=size, seed=seed + 1)
    results = {}
    for name in ("plain", attention):
        model = build_unet(width=width, seed=seed)
        if name != "plain":
            add_attention(model, attention)
        results[name] = train(model, data, held_out, steps=steps, batch_size=batch_size, seed=seed)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="volume edge in voxels, a multiple of 4 (default 32)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per network (default 150)")
    parser.add_argument("--batch-size", type=int, default=2, help="volumes per step (default 2)")
    parser.add_argument("--width", type=int, default=16, help="channels of the first UNet level (default 16)")
    parser.add_argument("--volumes", type=int, default=16, help="training volumes (default 16)")
    parser.add_argument("--attention", default="cbam", help="attention to retrofit (default cbam)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 8 or args.size % 4:
        parser.error(f"--size must be a multiple of 4 and at least 8, got {args.size}")
    for flag in ("steps", "batch_size", "width", "volumes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    results = compare(
        size=args.size, steps=args.steps, batch_size=args.batch_size, width=args.width, volumes=args.volumes,
        attention=args.attention, seed=args.seed,
    )  # fmt: skip
    print(f"{args.size}^3 volumes, {args.steps} steps of {args.batch_size}, seed {args.seed}")
    print(f"{'network':<12}{'loss first':>12}{'loss last':>11}{'Dice before':>13}{'Dice after':>12}{'seconds':>9}")
    for name, r in results.items():
        print(
            f"{name:<12}{r.first_loss:>12.3f}{r.last_loss:>11.3f}{r.dice_before:>13.3f}{r.dice_after:>12.3f}"
            f"{r.seconds:>9.0f}"
        )
    return results


if __name__ == "__main__":
    main()
