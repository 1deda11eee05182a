"""MixUp and CutMix of video batches (``torchvision.transforms.v2``), drawn as a function of the batch's key.

v2's MixUp and CutMix take one batch of images; a batch of clips wrapped as a ``tv_tensors.Video`` passes as
one, whatever the order of its (C, T) dimensions: MixUp blends whole clips, and CutMix's box lies in the last
two (H, W) dimensions, so it runs through every frame and channel. CutMix's λ is the box's share of the frame
after clipping at the borders (v2 computes it so). The targets are the one-hot labels mixed with the same λ.

Label smoothing is affine and mixing is a convex combination, so mixing the smoothed one-hot labels (timm's
order) equals smoothing the mixed ones: ``torch.nn.CrossEntropyLoss(label_smoothing=EPS)`` on the mixed
targets gives timm's loss exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["BatchMixing"]


class BatchMixing:
    """Mixes each training batch with MixUp, CutMix or, when both are on, one of them at random (p = 0.5 each).

    Args:
        num_classes: the number of classes (the targets' width).
        mixup: MixUp's Beta(α, α) parameter; 0: no MixUp.
        cutmix: CutMix's Beta(α, α) parameter; 0: no CutMix.
        seed: the run's seed; each batch's draw is a function of (seed, key) alone (see :meth:`__call__`).
    """

    def __init__(self, *, num_classes: int, mixup: float, cutmix: float, seed: int = 0) -> None:
        if num_classes < 2:
            raise ValueError(f"mixing needs at least 2 classes, got {num_classes}")
        if min(mixup, cutmix) < 0 or max(mixup, cutmix) == 0:
            raise ValueError(f"mixup and cutmix must be >= 0, one of them > 0; got mixup={mixup}, cutmix={cutmix}")
        mixers = [v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup > 0 else []
        mixers += [v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix > 0 else []
        self.mixer = mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)
        self.seed = seed

    def __call__(
        self, video: torch.Tensor, labels: torch.Tensor, *, key: tuple[int, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T, H, W) clips and (N,) int labels -> mixed clips and (N, num_classes) float targets.

        ``key`` (e.g. epoch, batch index, rank) fixes the draw, so that a resumed run mixes as an uninterrupted
        one; the global random state is left as it was.
        """
        if video.ndim != 5:
            raise ValueError(f"expected clips (N, C, T, H, W), got shape {tuple(video.shape)}")
        batch_seed = int(np.random.SeedSequence([self.seed, *key]).generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):  # v2 draws λ and the box on the CPU generator
            torch.manual_seed(batch_seed)
            mixed, targets = self.mixer(tv_tensors.Video(video), labels)
        return mixed.as_subclass(torch.Tensor), targets
