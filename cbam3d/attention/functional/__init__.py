"""Fused, memory-lean autograd Functions behind SE, CBAM and BAM.

Attention gates are cheap in FLOPs but, written with eager PyTorch ops, keep several input-sized
tensors alive for backward and make many passes over memory. The Functions here compute the same
numbers with explicit backward formulas that:

- keep only the gate's input (plus maps the size of one channel or one position) for backward, and
  recompute input-sized intermediates such as ``x * Mc`` in backward instead of storing them;
- store no input-sized index tensors: max-pool gradients are recomputed from the saved maxima;
- reduce over axes of strided views, so ``channels_last`` / ``channels_last_3d`` inputs are never copied;
- merge the contributions to ``grad_x`` in one or two passes instead of one per op.

After a BatchNorm (SE and CBAM in a residual block) even the gate's input need not be kept: the
``AfterNorm`` Functions keep the BatchNorm's input, which it keeps for its own backward anyway, and
recompute the gate's input from it (``norm=`` of :func:`channel_gate` and :func:`cbam`;
:func:`cbam3d.attention.after_norm.attend_after_norm` picks them).

Max-pool ties (the rule of both the global max of the channel gate and the channel-wise max of the
spatial gate): the gradient of the maximum is split evenly among the elements that attain it. This is
``torch.amax``'s rule, the minimum-norm subgradient, and for two tied elements exactly what central
finite differences measure, so ``gradcheck`` holds at such ties. (``max_pool``/``torch.max`` would give
it all to one element.)

The small parts (the channel MLP, the spatial conv and its BatchNorm) are differentiated explicitly
too, so every Function is one node of the autograd graph, and ``torch.compile`` traces it (forward and
backward) without graph breaks. The backward formulas are not themselves differentiable: a second
derivative (e.g. a gradient penalty) raises an error instead of returning a wrong value. Autocast is
turned off inside: the large products run in the input's dtype, the small parts in the parameters' dtype.

Modules: :mod:`.wiring` turns a gate's mathematics, written on named bundles of inputs and gradients,
into an autograd Function (the forward and backward, once for all); :mod:`.channel` (SE, CBAM's channel
gate), :mod:`.spatial` (CBAM's spatial gate), :mod:`.cbam_block` (the whole block) and :mod:`.bam` hold the
gates; :mod:`.ops` the input-sized operations they share.
"""

from .bam import BAMScaleFunction, BAMScaleInputs, bam_scale, mix_logits
from .cbam_block import CBAMAfterNormFunction, CBAMFunction, CBAMInputs, cbam
from .channel import (
    ChannelGateAfterNormFunction,
    ChannelGateFunction,
    ChannelGateInputs,
    ChannelWeightsFunction,
    MLPParameters,
    channel_gate,
    channel_weights,
)
from .spatial import SpatialGateFunction, SpatialGateInputs, SpatialGateParameters, spatial_gate
from .wiring import FusedFunction, NormAffine

__all__ = [
    "BAMScaleFunction",
    "BAMScaleInputs",
    "CBAMAfterNormFunction",
    "CBAMFunction",
    "CBAMInputs",
    "ChannelGateAfterNormFunction",
    "ChannelGateFunction",
    "ChannelGateInputs",
    "ChannelWeightsFunction",
    "FusedFunction",
    "MLPParameters",
    "NormAffine",
    "SpatialGateFunction",
    "SpatialGateInputs",
    "SpatialGateParameters",
    "bam_scale",
    "cbam",
    "channel_gate",
    "channel_weights",
    "mix_logits",
    "spatial_gate",
]
