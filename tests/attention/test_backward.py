"""Backward through SE, CBAM and BAM: gradients agree with finite differences (float64 gradcheck) and with the
modules' formulas written in eager ops, as do the BatchNorm statistics; only the input and maps of one channel are
kept for backward; channels_last_3d, bf16 autocast, torch.compile and CUDA give the same gradients; and a second
derivative raises instead of being wrong."""

import copy

import pytest
import torch
from torch import nn

from cbam3d import BAM, CBAM, ECA, SE
from cbam3d.benchmark.measure import saved_bytes

MODULES = {
    "se": lambda channels, dims: SE(channels, dims=dims, reduction=4),
    "cbam": lambda channels, dims: CBAM(channels, dims=dims, reduction=4, kernel_size=3),
    "cbam-all-pools": lambda channels, dims: CBAM(
        channels, dims=dims, reduction=4, kernel_size=3, pool_types=("avg", "max", "lp", "lse")
    ),
    "cbam-parallel": lambda channels, dims: CBAM(
        channels, dims=dims, reduction=4, kernel_size=3, gate_order="parallel"
    ),
    "bam-sum": lambda channels, dims: BAM(channels, dims=dims, reduction=4, dilation=1),
    "bam-product": lambda channels, dims: BAM(channels, dims=dims, reduction=4, dilation=1, combine="product"),
}
SHAPES = {1: (2, 16, 10), 2: (2, 16, 5, 6), 3: (2, 16, 3, 5, 6)}
# gradcheck perturbs every element: small inputs
GRADCHECK_SHAPES = {1: (2, 8, 5), 2: (2, 8, 4, 3), 3: (2, 8, 3, 3, 2)}


def eager_reference(module, x):
    """The modules' formulas written with eager ops (no custom autograd Function)."""
    if isinstance(module, CBAM):
        gate, spatial = module.channel_gate, module.spatial_gate
        channel = torch.sigmoid(gate.logits(x)).reshape(*x.shape[:2], *(1,) * module.dims)
        y = x * channel
        return y * torch.sigmoid(spatial.logits(x if module.gate_order == "parallel" else y))
    if isinstance(module, SE):
        return x * torch.sigmoid(module.logits(x)).reshape(*x.shape[:2], *(1,) * module.dims)
    return x * module.attention(x)


class _Eager(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return eager_reference(self.module, x)


def assert_same_gradients(module, x, expected_module, expected_x):
    """The input's and every parameter's gradient equal the expected ones."""
    torch.testing.assert_close(x.grad, expected_x.grad)
    for p, p_expected in zip(module.parameters(), expected_module.parameters()):
        torch.testing.assert_close(p.grad, p_expected.grad)


# --- gradients ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_every_module_passes_gradcheck_in_float64_in_every_dims(name, dims, train):
    torch.manual_seed(0)
    module = MODULES[name](8, dims).double().train(train)
    shape = GRADCHECK_SHAPES[dims]
    # Distinct values: max pooling has no ties, so the function is differentiable where it is checked.
    x = (torch.randperm(torch.Size(shape).numel(), dtype=torch.float64) / 10 - 2).reshape(shape)
    x.requires_grad_(True)
    if train:
        # Train-mode BatchNorm updates running statistics on every call; check the function, not the update.
        for bn in module.modules():
            if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                bn.track_running_stats = False
                bn.running_mean = bn.running_var = None
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-5)


def test_the_factorized_spatio_temporal_gate_passes_gradcheck():
    torch.manual_seed(0)
    module = CBAM(8, dims=3, reduction=4, kernel_size=3, spatial_mode="factorized").double().eval()
    x = torch.randn(2, 8, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_modules_match_the_eager_formulas_in_output_gradients_and_bn_statistics(name, dims, train, randomize):
    """In float64, so that gradients that are zero in exact arithmetic (a conv bias before a train-mode
    BatchNorm) compare as rounding noise far below the tolerance."""
    torch.manual_seed(0)
    module = randomize(MODULES[name](16, dims)).double().train(train)
    eager = copy.deepcopy(module)
    x = torch.randn(SHAPES[dims], dtype=torch.float64, requires_grad=True)
    x_eager = x.detach().clone().requires_grad_()
    out, expected = module(x), eager_reference(eager, x_eager)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, x_eager.grad, rtol=1e-9, atol=1e-11)
    for (key, p), p_eager in zip(module.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, p_eager.grad, rtol=1e-9, atol=1e-11, msg=key)
    for (key, b), b_eager in zip(module.named_buffers(), eager.buffers()):
        torch.testing.assert_close(b, b_eager, msg=key)


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum"])
def test_channels_last_3d_gives_the_same_gradients_in_channels_last_3d(name):
    module = MODULES[name](16, 3).train()
    x = torch.randn(2, 16, 3, 5, 6)
    grads = []
    for memory_format in (torch.contiguous_format, torch.channels_last_3d):
        xi = x.clone().contiguous(memory_format=memory_format).requires_grad_()
        out = module(xi)
        out.backward(torch.ones_like(out))
        grads.append(xi.grad)
        assert out.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    assert grads[1].is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum"])
def test_under_bf16_autocast_the_gradients_match_the_eager_formulas_under_autocast(name):
    """Close in relative norm at bf16 accuracy (the modules' autograd Functions run their small parts in fp32,
    eager autocast in bf16; a conv bias before a train-mode BatchNorm has a zero gradient up to noise), and
    every gradient comes back in its tensor's dtype."""
    torch.manual_seed(0)
    module = MODULES[name](16, 3).train()
    eager = copy.deepcopy(module)
    x = torch.randn(SHAPES[3], requires_grad=True)
    x_eager = x.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = module(x), eager_reference(eager, x_eager)
    out.float().sum().backward()
    expected.float().sum().backward()
    assert x.grad.dtype == x.dtype
    assert (x.grad - x_eager.grad).norm() < 0.05 * x_eager.grad.norm()
    for p, p_eager in zip(module.parameters(), eager.parameters()):
        assert p.grad.dtype == p.dtype
        assert (p.grad - p_eager.grad).norm() <= 0.1 * p_eager.grad.norm() + 0.05  # + noise: bias before BN


COMPILE_BACKENDS = {"cpu": "aot_eager", "cuda": "inductor"}


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum", "eca"])
def test_torch_compile_traces_forward_and_backward_without_graph_breaks(name, device):
    """One graph (fullgraph) forward and backward, with the eager module's numbers: through AOTAutograd on the CPU
    (inductor would compile C++ for minutes there), through inductor's generated kernels on CUDA (float32, TF32
    off: the fused kernels sum in other orders, so within :data:`FLOAT32_TOLERANCE`)."""
    torch.manual_seed(0)
    module = ALL_MODULES[name](16, 3).to(device).train()
    compiled_module = copy.deepcopy(module)
    compiled = torch.compile(compiled_module, fullgraph=True, backend=COMPILE_BACKENDS[device.type])
    x = torch.randn(SHAPES[3], device=device, requires_grad=True)
    x_compiled = x.detach().clone().requires_grad_()
    out, out_compiled = module(x), compiled(x_compiled)
    assert relative_error(out_compiled, out, norm=False) <= FLOAT32_TOLERANCE
    grad = torch.randn_like(out)
    out.backward(grad)
    out_compiled.backward(grad)
    assert relative_error(x_compiled.grad, x.grad, norm=True) <= FLOAT32_TOLERANCE
    assert relative_error(gradients_of(compiled_module), gradients_of(module), norm=True) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum"])
def test_a_second_derivative_raises_instead_of_being_wrong(name):
    module = MODULES[name](16, 3).train()
    x = torch.randn(SHAPES[3], requires_grad=True)
    (grad,) = torch.autograd.grad(module(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad.sum().backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_on_cuda_the_modules_match_the_eager_formulas(name, train):
    torch.manual_seed(0)
    module = MODULES[name](16, 3).double().cuda().train(train)
    eager = copy.deepcopy(module)
    x = torch.randn(SHAPES[3], dtype=torch.float64, device="cuda", requires_grad=True)
    x_eager = x.detach().clone().requires_grad_()
    out, expected = module(x), eager_reference(eager, x_eager)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    expected.sum().backward()
    assert_same_gradients(module, x, eager, x_eager)


# --- what is kept for backward ------------------------------------------------------------------------------
def saved_tensors(module, x):
    """The tensors a forward pass keeps for backward, parameters and buffers left out."""
    excluded = {t.data_ptr() for t in (*module.parameters(), *module.buffers())}
    saved = []

    def pack(tensor):
        if tensor.data_ptr() not in excluded:
            saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return saved


def unique_bytes(tensors):
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last_3d])
def test_cbam_keeps_its_input_and_two_maps_of_one_channel_for_backward(memory_format):
    """1 + 2/C times the input (the channel max and the conv output), plus (N, C)-sized vectors; the
    eager formulas keep x * Mc as well (2x)."""
    cbam = CBAM(32, dims=3, kernel_size=7).train()
    x = torch.randn(2, 32, 4, 8, 8).contiguous(memory_format=memory_format).requires_grad_()
    saved = saved_tensors(cbam, x)
    input_bytes = x.numel() * x.element_size()
    assert unique_bytes(saved) <= input_bytes * (1 + 2 / 32) + 4096
    full_size = [t for t in saved if t.numel() >= x.numel()]
    assert full_size and all(t.data_ptr() == x.data_ptr() for t in full_size)
    eager_bytes = unique_bytes(saved_tensors(_Eager(cbam), x))
    assert eager_bytes > 1.9 * input_bytes


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum"])
def test_no_input_sized_tensor_but_the_input_and_no_int64_index_is_kept(name):
    module = MODULES[name](16, 3).train()
    x = torch.randn(2, 16, 3, 6, 6, requires_grad=True)
    saved = saved_tensors(module, x)
    assert all(t.data_ptr() == x.data_ptr() for t in saved if t.numel() >= x.numel())
    assert all(t.numel() * 8 < x.numel() for t in saved if t.dtype == torch.int64)


def test_bam_keeps_neither_its_sigmoid_nor_its_factor():
    """The eager formula keeps the input-sized sigmoid and ``1 + sigmoid``; BAM keeps x, and the branches' own
    activations (C/r channels each)."""
    bam = BAM(32, dims=3).train()
    x = torch.randn(2, 32, 3, 6, 6, requires_grad=True)
    input_bytes = x.numel() * x.element_size()
    kept, eager = unique_bytes(saved_tensors(bam, x)), unique_bytes(saved_tensors(_Eager(bam), x))
    assert kept < 1.5 * input_bytes < eager - input_bytes


# --- on each device: float32, and bf16 / fp16 autocast, against the float32 eager formulas -----------------------
# The reference is a float32 copy of the module run eagerly on the same input values (the input rounded to the
# autocast format first, as a convolution's output under autocast is), so the errors measured are the module's.
# Tolerances, relative to the reference's scale:
# - outputs, against their largest magnitude: float32 with TF32 off 1e-5 (float32's epsilon, 1.2e-7, grown by sums
#   over up to a few hundred terms); fp16 and bf16 four units of roundoff of the format (2^-11 and 2^-8, so 2e-3 and
#   1.6e-2): the eager parts of BAM and ECA in the format, then the output rounded to it;
# - the input's gradient, in norm: 4 times the output's, as rounding re-orders near-equal values in the max pools
#   and so moves whole gradient contributions to other elements (2.7e-2 measured for CBAM in bf16 on the CPU);
# - the parameters' gradients, all together in norm: float32 1e-5; autocast 0.15: BAM's spatial branch runs four
#   convolutions and train-mode BatchNorms deep in the format, and a BatchNorm's backward subtracts means
#   (cancellation), so its parameters' gradients carry errors of several percent (up to 9.5e-2 measured in bf16 on
#   the CPU, 3 seeds); a wrong formula gives errors of order 1.
AUTOCAST = {"fp16": (torch.float16, 2e-3), "bf16": (torch.bfloat16, 1.6e-2)}
FLOAT32_TOLERANCE = 1e-5
AUTOCAST_PARAMETER_TOLERANCE = 0.15
ALL_MODULES = {**MODULES, "eca": lambda channels, dims: ECA(channels, dims=dims, kernel_size=3)}


def relative_error(actual, expected, *, norm):
    """|actual - expected| over |expected|, in norm (``norm``) or in largest magnitude."""
    difference, expected = actual.float() - expected.float(), expected.float()
    if norm:
        return (difference.norm() / expected.norm()).item()
    return (difference.abs().max() / expected.abs().max()).item()


def gradients_of(module):
    """Every parameter's gradient in one vector: compared in norm, since some are zero up to rounding (a conv bias
    before a train-mode BatchNorm) and so have no scale of their own."""
    return torch.cat([p.grad.flatten() for p in module.parameters()])


def check_against_float32_eager(module, reference, x, *, dtype, tolerance):
    """``module`` on ``x`` rounded to ``dtype``, under autocast to it, against ``reference``, a float32 copy, on
    the same values in float32 without autocast: output, input and parameter gradients and their dtypes (``dtype``
    None: float32 without autocast)."""
    x_run = x.detach().to(dtype or torch.float32).requires_grad_()
    x_reference = x_run.detach().float().requires_grad_()
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = module(x_run)
    expected = reference(x_reference)
    assert out.dtype == x_run.dtype and out.device == x.device
    assert relative_error(out, expected, norm=False) <= tolerance
    grad = torch.randn_like(expected)
    out.backward(grad.to(out.dtype))
    expected.backward(grad)
    assert x_run.grad.dtype == x_run.dtype
    assert relative_error(x_run.grad, x_reference.grad, norm=True) <= (4 * tolerance if dtype else tolerance)
    assert all(p.grad.dtype == p.dtype for p in module.parameters())
    parameter_tolerance = AUTOCAST_PARAMETER_TOLERANCE if dtype else tolerance
    assert relative_error(gradients_of(module), gradients_of(reference), norm=True) <= parameter_tolerance


def _module_and_eager_reference(name, device, randomize, train=True):
    torch.manual_seed(0)
    module = randomize(ALL_MODULES[name](16, 3)).to(device).train(train)
    return module, _Eager(copy.deepcopy(module))


@pytest.mark.parametrize("name", list(ALL_MODULES))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_in_float32_the_modules_match_the_float32_eager_formulas_on_each_device(name, train, device, randomize):
    module, reference = _module_and_eager_reference(name, device, randomize, train)
    x = torch.randn(SHAPES[3], device=device)
    check_against_float32_eager(module, reference, x, dtype=None, tolerance=FLOAT32_TOLERANCE)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", list(AUTOCAST))
@pytest.mark.parametrize("name", list(ALL_MODULES))
def test_under_autocast_on_cuda_the_modules_match_the_float32_eager_formulas(name, precision, randomize, cuda_device):
    dtype, tolerance = AUTOCAST[precision]
    module, reference = _module_and_eager_reference(name, cuda_device, randomize)
    x = torch.randn(4, 16, 4, 14, 14, device=cuda_device)
    check_against_float32_eager(module, reference, x, dtype=dtype, tolerance=tolerance)


@pytest.mark.parametrize("name", ["se", "cbam", "bam-sum", "eca"])
def test_channels_last_3d_in_and_out_without_copies_on_each_device(name, device):
    """A channels_last_3d input gives an output and an input gradient with its strides, and the only input-sized
    tensor kept for backward is the input itself (same storage): no contiguous copy anywhere."""
    module = ALL_MODULES[name](16, 3).to(device).train()
    x = torch.randn(2, 16, 3, 5, 6, device=device).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    saved = saved_tensors(module, x)
    full_size = [t for t in saved if t.numel() >= x.numel()]
    assert full_size and all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in full_size)
    out = module(x)
    assert out.stride() == x.stride()
    out.backward(torch.randn_like(out))
    assert x.grad.stride() == x.stride()


@pytest.mark.gpu
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last_3d])
@pytest.mark.parametrize("name", list(ALL_MODULES))
def test_on_cuda_the_memory_kept_for_backward_is_the_cpus(name, memory_format):
    """The same bytes kept for backward (cbam3d.benchmark's measurement) on CUDA as on the CPU, float32."""
    torch.manual_seed(0)
    module = ALL_MODULES[name](16, 3).train()
    x = torch.randn(2, 16, 3, 5, 6).contiguous(memory_format=memory_format).requires_grad_()
    on_cpu = saved_bytes(module, x)
    x_cuda = x.detach().cuda().contiguous(memory_format=memory_format).requires_grad_()
    assert saved_bytes(module.cuda(), x_cuda) == on_cpu
