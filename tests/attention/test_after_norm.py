"""Attention fused with the BatchNorm before it (cbam3d.attention.after_norm): the same numbers as the unfused path,
and no input-sized tensor kept for backward beyond what the network without attention keeps."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torchvision
from torch import nn

from cbam3d import CBAM, SE
from cbam3d.attention.after_norm import attend_after_norm
from cbam3d.attention.registry import create_attention
from cbam3d.benchmark.measure import saved_bytes
from cbam3d.models import add_attention, create_model
from cbam3d.models.blocks import BasicBlock
from cbam3d.models.convs import conv3x3x3
from cbam3d.models.retrofit import IdentityInitAttention

ATTENTIONS = {
    "se": lambda dims: SE(8, dims, reduction=2),
    "cbam": lambda dims: CBAM(8, dims, reduction=2, kernel_size=3),
    "cbam-all-pools": lambda dims: CBAM(8, dims, reduction=2, kernel_size=3, pool_types=("avg", "max", "lp", "lse")),
    "cbam-no-spatial": lambda dims: CBAM(8, dims, reduction=2, spatial=False),
}
NORMS = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
SHAPES = {2: (3, 8, 4, 4), 3: (2, 8, 2, 4, 4)}


def _norm_and_attention(name: str, dims: int, training: bool, randomize, dtype=torch.float32):
    norm, attention = NORMS[dims](8), ATTENTIONS[name](dims)
    pair = randomize(nn.ModuleList([norm, attention])).to(dtype).train(training)
    return pair[0], pair[1]


class NormThenAttention(nn.Module):
    """``attend_after_norm(attention, norm, x, norm(x))`` as a module, for ``functional_call``."""

    def __init__(self, norm: nn.Module, attention: nn.Module) -> None:
        super().__init__()
        self.norm, self.attention = norm, attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return attend_after_norm(self.attention, self.norm, x, self.norm(x))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("name", "dims"), [(name, 3) for name in sorted(ATTENTIONS)] + [("cbam", 2)])
def test_attention_after_norm_passes_gradcheck_in_float64(name, dims, training, randomize):
    """The fused BatchNorm + attention has correct gradients for the input and every parameter."""
    block = NormThenAttention(*_norm_and_attention(name, dims, training, randomize, torch.float64))
    names, params = zip(*block.named_parameters())
    x = torch.randn(*SHAPES[dims], dtype=torch.float64, requires_grad=True)

    def fused(x, *values):
        return torch.func.functional_call(block, dict(zip(names, values)), (x,))

    assert torch.autograd.gradcheck(fused, (x, *params))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_fused_matches_unfused_outputs_gradients_and_running_statistics(name, training, randomize, device):
    """Float32: the output is bit-for-bit the unfused ``attention(norm(x))``, every gradient agrees to
    rounding, and the running statistics (main and spatial-gate BatchNorm) are updated once, identically."""
    norm, attention = (module.to(device) for module in _norm_and_attention(name, 3, training, randomize))
    ref_norm, ref_attention = copy.deepcopy(norm), copy.deepcopy(attention)
    x = torch.randn(2, 8, 4, 6, 6, device=device, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out = attend_after_norm(attention, norm, x, norm(x))
    ref = ref_attention(ref_norm(x_ref))
    assert torch.equal(out, ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    for (key, p), p_ref in zip(
        [*norm.named_parameters(), *attention.named_parameters()], [*ref_norm.parameters(), *ref_attention.parameters()]
    ):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=key)
    for b, b_ref in zip([*norm.buffers(), *attention.buffers()], [*ref_norm.buffers(), *ref_attention.buffers()]):
        assert torch.equal(b, b_ref)


# Tolerances of tests/attention/test_backward.py (where they are argued): output at 4 units of the format's roundoff
# of its largest magnitude, the input's gradient at 4 times that in norm, the parameters' gradients at 0.15 in norm.
AUTOCAST = {"fp16": (torch.float16, 2e-3), "bf16": (torch.bfloat16, 1.6e-2)}


def _relative_error(actual, expected, *, norm):
    difference, expected = actual.float() - expected.float(), expected.float()
    if norm:
        return (difference.norm() / expected.norm()).item()
    return (difference.abs().max() / expected.abs().max()).item()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", sorted(AUTOCAST))
@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_under_autocast_on_cuda_the_fused_call_matches_the_float32_unfused_one(name, precision, randomize, cuda_device):
    """BatchNorm + attention under bf16 / fp16 autocast on a channels_last_3d input in the format (a convolution's
    output under autocast), against the float32 unfused ``attention(norm(x))`` on the same values."""
    dtype, tolerance = AUTOCAST[precision]
    block = NormThenAttention(*_norm_and_attention(name, 3, True, randomize)).to(cuda_device)
    reference = copy.deepcopy(block)
    x = torch.randn(4, 8, 4, 12, 12, device=cuda_device).contiguous(memory_format=torch.channels_last_3d)
    x_run = x.to(dtype).requires_grad_()
    x_reference = x_run.detach().float().requires_grad_()
    with torch.autocast("cuda", dtype=dtype):
        out = block(x_run)
    expected = reference.attention(reference.norm(x_reference))
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last_3d)
    assert _relative_error(out, expected, norm=False) <= tolerance
    grad = torch.randn_like(expected)
    out.backward(grad.to(dtype))
    expected.backward(grad)
    assert x_run.grad.dtype == dtype
    assert _relative_error(x_run.grad, x_reference.grad, norm=True) <= 4 * tolerance
    gradients = torch.cat([p.grad.flatten() for p in block.parameters()])
    expected_gradients = torch.cat([p.grad.flatten() for p in reference.parameters()])
    assert _relative_error(gradients, expected_gradients, norm=True) <= 0.15


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_on_cuda_the_fused_call_keeps_the_cpus_bytes_for_backward(name, randomize):
    """saved_bytes of BatchNorm + fused attention, float32: the same on CUDA as on the CPU."""
    block = NormThenAttention(*_norm_and_attention(name, 3, True, randomize))
    x = torch.randn(2, 8, 4, 6, 6, requires_grad=True)
    on_cpu = saved_bytes(block, x)
    assert saved_bytes(block.cuda(), x.detach().cuda().requires_grad_()) == on_cpu


def test_attention_after_norm_reports_the_unfused_maps_to_map_hooks(randomize):
    """Map hooks of both CBAM gates see the maps the unfused block reports."""
    norm, attention = _norm_and_attention("cbam", 3, True, randomize)
    ref_norm, ref_attention = copy.deepcopy(norm), copy.deepcopy(attention)
    seen, seen_ref = [], []
    for module, store in ((attention, seen), (ref_attention, seen_ref)):
        module.channel_gate.register_map_hook(lambda _m, a, store=store: store.append(a))
        module.spatial_gate.register_map_hook(lambda _m, a, store=store: store.append(a))
    x = torch.randn(2, 8, 4, 6, 6, requires_grad=True)
    attend_after_norm(attention, norm, x, norm(x))
    ref_attention(ref_norm(x))
    assert len(seen) == len(seen_ref) == 2
    for a, b in zip(seen, seen_ref):
        assert torch.equal(a, b)


def _saved_storages(step) -> set[int]:
    """The data pointers of the storages ``step()`` saves for backward."""
    saved = set()

    def pack(tensor):
        saved.add(tensor.untyped_storage().data_ptr())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return saved


@pytest.mark.parametrize("case", ["identity-init wrapper", "sync batch norm"])
def test_unfusable_calls_keep_the_norm_output_as_the_plain_attention_does(case, randomize):
    """Anything but (cbam3d gate, plain BatchNorm) runs the attention itself on the norm's output: same
    output, and the norm's output is kept for backward (the fused path keeps only the norm's input)."""
    norm, attention = _norm_and_attention("se", 3, True, randomize)
    if case == "identity-init wrapper":
        attention = IdentityInitAttention(attention)
    else:
        norm = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(norm))[0]
        norm.eval()  # SyncBatchNorm needs a process group in training mode
    x = torch.randn(2, 8, 4, 6, 6, requires_grad=True)
    norm_output = norm(x)
    outputs = []
    saved = _saved_storages(lambda: outputs.append(attend_after_norm(attention, norm, x, norm_output)))
    assert norm_output.untyped_storage().data_ptr() in saved
    assert torch.equal(outputs[0], attention(norm_output))


def test_fused_call_keeps_the_norm_input_not_its_output(randomize):
    """The fused path's saved tensors include the norm's input and not its output."""
    norm, attention = _norm_and_attention("cbam", 3, True, randomize)
    x = torch.randn(2, 8, 4, 6, 6, requires_grad=True)
    norm_input = x * 1.0
    norm_output = norm(norm_input)
    saved = _saved_storages(lambda: attend_after_norm(attention, norm, norm_input, norm_output))
    assert norm_input.untyped_storage().data_ptr() in saved
    assert norm_output.untyped_storage().data_ptr() not in saved


def test_without_autograd_recording_the_attention_runs_plainly(randomize):
    """Under no_grad the output is the attention's and no graph is recorded."""
    norm, attention = _norm_and_attention("cbam", 3, True, randomize)
    x = torch.randn(2, 8, 4, 6, 6)
    with torch.no_grad():
        norm_output = norm(x)
        out = attend_after_norm(attention, norm, x, norm_output)
        assert out.grad_fn is None and torch.equal(out, attention(norm_output))


def _saved(network: str, attention: str | None, clip: tuple[int, ...]) -> int:
    """Bytes kept for backward by ``network`` (a key of :data:`NETWORKS`) with ``attention`` on a clip."""
    torch.manual_seed(0)
    return saved_bytes(NETWORKS[network][0](attention).train(), torch.randn(*clip, requires_grad=True))


_plain_saved = functools.cache(functools.partial(_saved, attention=None))


def _saved_increase(network: str, attention: str, clip: tuple[int, ...]) -> float:
    """The memory kept for backward with ``attention`` over that of the plain network, minus 1."""
    return _saved(network, attention, clip) / _plain_saved(network, clip=clip) - 1


def _torchvision_r3d_18(attention):
    model = torchvision.models.video.r3d_18()
    return model if attention is None else add_attention(model, attention)


NETWORKS = {
    "r3d_18": (lambda attention: create_model("r3d_18", attention=attention), 0.03),
    "torchvision r3d_18 retrofitted": (_torchvision_r3d_18, 0.03),
    "resnet3d-18": (lambda attention: create_model("resnet3d-18", attention=attention), 0.02),
}


@pytest.mark.parametrize("attention", ["se", "cbam"])
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_attention_adds_at_most_the_target_to_activation_memory(network, attention):
    """The memory kept for backward (saved tensors, unique storages, parameters excluded) grows by at
    most 3% (r3d_18, built or retrofitted) or 2% (resnet3d-18) over the plain network."""
    assert _saved_increase(network, attention, (1, 3, 8, 40, 40)) <= NETWORKS[network][1]


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["se", "cbam"])
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_attention_memory_target_holds_at_a_training_sized_clip(network, attention):
    """The same targets at a clip of the size training uses, 2x3x8x112x112."""
    assert _saved_increase(network, attention, (2, 3, 8, 112, 112)) <= NETWORKS[network][1]


@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_a_residual_block_with_fused_attention_traces_without_graph_breaks(attention):
    """torch.compile sees the block, BatchNorm and fused attention included, as one graph."""
    block = BasicBlock(8, 8, 1, conv3x3x3, 3, attention=lambda c, d: create_attention(attention, c, d, reduction=2))
    explanation = torch._dynamo.explain(block.train())(torch.randn(2, 8, 2, 6, 6, requires_grad=True))
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0)
