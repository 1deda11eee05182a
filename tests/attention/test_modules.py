"""What SE, CBAM and BAM share in every dims: the input's shape back, the same state_dict keys, the one-frame
property, lazy channels, empty inputs, memory formats, autocast and torch.compile (forward; backward is in
test_backward.py)."""

import pytest
import torch
from torch import nn

from cbam3d import BAM, CBAM, SE, ChannelGate
from cbam3d.attention.registry import attention_names, create_attention

SHAPES = {1: (2, 32, 10), 2: (2, 32, 6, 7), 3: (2, 32, 4, 6, 7)}
MODULES = {"se": SE, "cbam": CBAM, "bam": BAM}


# --- shapes and state_dicts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(MODULES))
def test_output_has_the_input_shape_in_every_dims(name, dims):
    x = torch.randn(SHAPES[dims])
    assert MODULES[name](32, dims=dims)(x).shape == x.shape


@pytest.mark.parametrize("name", list(MODULES))
def test_state_dict_keys_are_the_same_in_every_dims(name):
    keys = {dims: list(MODULES[name](32, dims=dims).state_dict()) for dims in (1, 2, 3)}
    assert keys[1] == keys[2] == keys[3]


def test_reduction_larger_than_channels_keeps_one_hidden_unit():
    gate = ChannelGate(8, dims=2, reduction=16)
    assert gate.mlp[0].out_features == 1
    assert BAM(8, dims=2).spatial_gate.reduce[0].out_channels == 1


def _load_2d_into_framewise_3d(module_2d: nn.Module, module_3d: nn.Module) -> None:
    state = {k: v.unsqueeze(2) if k.endswith("conv.weight") else v for k, v in module_2d.state_dict().items()}
    module_3d.load_state_dict(state, strict=True)


@pytest.mark.parametrize(
    "make_2d, make_3d",
    [
        (lambda: CBAM(32, dims=2), lambda: CBAM(32, dims=3, kernel_size=(1, 7, 7))),
        (lambda: CBAM(32, dims=2, kernel_size=3), lambda: CBAM(32, dims=3, spatial_mode="framewise", kernel_size=3)),
        (lambda: SE(32, dims=2), lambda: SE(32, dims=3)),
    ],
    ids=["cbam-1x7x7", "cbam-framewise", "se"],
)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_one_frame_clip_in_3d_equals_the_2d_block_on_that_frame(make_2d, make_3d, train, randomize):
    torch.manual_seed(0)
    module_2d, module_3d = randomize(make_2d()), make_3d()
    _load_2d_into_framewise_3d(module_2d, module_3d)
    module_2d.train(train), module_3d.train(train)
    frame = torch.randn(3, 32, 9, 8)
    torch.testing.assert_close(module_3d(frame.unsqueeze(2)).squeeze(2), module_2d(frame), rtol=1e-5, atol=1e-6)


# --- lazy channels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODULES))
def test_lazy_channels_are_taken_from_the_first_input(name):
    lazy = MODULES[name](dims=3)
    assert lazy.channels is None
    x = torch.randn(2, 24, 2, 5, 5)
    assert lazy(x).shape == x.shape
    assert lazy.channels == 24
    eager = MODULES[name](24, dims=3)
    assert {k: v.shape for k, v in lazy.state_dict().items()} == {k: v.shape for k, v in eager.state_dict().items()}


def test_lazy_module_is_built_by_load_state_dict():
    eager = CBAM(24, dims=2)
    lazy = CBAM(dims=2)
    lazy.load_state_dict(eager.state_dict(), strict=True)
    assert lazy.channels == 24
    x = torch.randn(2, 24, 5, 5)
    torch.testing.assert_close(lazy(x), eager(x))


def test_lazy_module_is_built_in_the_inputs_dtype():
    lazy = SE(dims=1)
    lazy(torch.randn(2, 8, 5, dtype=torch.float64))
    assert lazy.mlp[0].weight.dtype == torch.float64


def test_lazy_module_first_called_after_eval_builds_its_layers_in_eval_mode():
    """A lazy BAM first called after ``.eval()`` builds its layers in eval mode: its BatchNorms do not update."""
    bam = BAM(None, dims=3, reduction=4).eval()
    bam(torch.randn(2, 16, 4, 8, 8))
    assert all(not module.training for module in bam.modules())
    norms = [m for m in bam.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = [norm.running_mean.clone() for norm in norms]
    bam(torch.randn(2, 16, 4, 8, 8) + 5)
    assert all(torch.equal(b, norm.running_mean) for b, norm in zip(before, norms))


def test_lazy_module_built_in_training_mode_builds_training_layers():
    bam = BAM(None, dims=2, reduction=4)
    bam(torch.randn(2, 16, 8, 8))
    assert all(module.training for module in bam.modules())


# --- empty inputs -------------------------------------------------------------------------------------------
_SPATIAL = {1: (8,), 2: (8, 8), 3: (4, 8, 8)}


@pytest.mark.parametrize("name", attention_names())
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_empty_batch_passes_through_forward_and_backward(name, dims, training):
    """A batch of 0 clips gives an output of the same shape and a backward pass, not a crash."""
    module = create_attention(name, 16, dims=dims).train(training)
    x = torch.randn(0, 16, *_SPATIAL[dims], requires_grad=True)
    out = module(x)
    out.sum().backward()
    assert out.shape == x.shape
    assert x.grad.shape == x.shape


@pytest.mark.parametrize(
    "module",
    [CBAM(16, dims=3, spatial=False), CBAM(16, dims=3, gate_order="parallel"), SE(16, dims=3), CBAM(None, dims=3)],
    ids=["cbam-channel-only", "cbam-parallel", "se", "cbam-lazy"],
)
def test_empty_batch_passes_through_every_variant_and_builds_a_lazy_module(module):
    """Channel-only and parallel CBAM, SE and a lazy CBAM take an empty batch (the lazy one is built for its
    channels)."""
    x = torch.randn(0, 16, 4, 8, 8, requires_grad=True)
    module(x).sum().backward()
    assert module.channels == 16


def test_clip_of_zero_frames_passes_through():
    x = torch.randn(2, 16, 0, 8, 8)
    assert CBAM(16, dims=3)(x).shape == x.shape


# --- memory formats, autocast, torch.compile ----------------------------------------------------------------
@pytest.mark.parametrize("dims, memory_format", [(2, torch.channels_last), (3, torch.channels_last_3d)])
@pytest.mark.parametrize("name", list(MODULES))
def test_channels_last_inputs_give_the_same_numbers_and_keep_their_layout(name, dims, memory_format):
    module = MODULES[name](32, dims=dims).eval()
    x = torch.randn(SHAPES[dims])
    y = module(x.contiguous(memory_format=memory_format))
    torch.testing.assert_close(y, module(x), rtol=1e-5, atol=1e-6)
    assert y.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("name", list(MODULES))
def test_bf16_autocast_runs_and_stays_close_to_fp32(name):
    module = MODULES[name](32, dims=3).eval()
    x = torch.randn(SHAPES[3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.float(), module(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", list(MODULES))
def test_torch_compile_traces_without_graph_breaks(name):
    module = MODULES[name](32, dims=3).eval()
    x = torch.randn(SHAPES[3])
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), module(x))


@pytest.mark.slow
def test_torch_compile_with_inductor_matches_eager():
    module = CBAM(32, dims=3).train()
    x = torch.randn(SHAPES[3], requires_grad=True)
    compiled = torch.compile(module)
    torch.testing.assert_close(compiled(x), module(x), rtol=1e-4, atol=1e-5)
