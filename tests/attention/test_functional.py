"""The fused autograd Functions of cbam3d.attention.functional: the wiring of named bundles in and out of
``Function.apply`` (one Function made from a gate's mathematics alone), float64 gradcheck of every Function in every
dims, including max-pool ties, and the tie rule against its explicit formula."""

from typing import NamedTuple

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck

from cbam3d.attention.functional import (
    ChannelGateAfterNormFunction,
    ChannelGateFunction,
    ChannelGateInputs,
    MLPParameters,
    NormAffine,
    SpatialGateParameters,
    bam_scale,
    cbam,
    channel_gate,
    channel_weights,
    spatial_gate,
)
from cbam3d.attention.functional.wiring import (
    Computed,
    FusedFunction,
    Kept,
    bundle_layout,
    flatten,
    gradients_in_input_order,
    unflatten,
    without_tensors,
)


# --- wiring: a toy Function through FusedFunction -------------------------------------------------------
class Affine(NamedTuple):
    weight: Tensor
    bias: Tensor | None
    label: str


class ToyInputs(NamedTuple):
    x: Tensor
    affine: Affine
    power: int


class AffineGradients(NamedTuple):
    weight: Tensor


class ToyGradients(NamedTuple):
    x: Tensor
    affine: AffineGradients


class ToySaved(NamedTuple):
    weight: Tensor


class ToyFunction(FusedFunction):
    """``(x * weight) ** power``, differentiable in x and weight only."""

    Inputs, Saved = ToyInputs, ToySaved

    @staticmethod
    def compute(inputs: ToyInputs) -> Computed:
        return Computed((inputs.x * inputs.affine.weight) ** inputs.power, ToySaved(inputs.affine.weight))

    @staticmethod
    def gradients(grad_output: Tensor, kept: Kept) -> ToyGradients:
        weight, power = kept.saved.weight, kept.settings.power
        common = grad_output * power * (kept.x * weight) ** (power - 1)
        return ToyGradients(x=common * weight, affine=AffineGradients(weight=(common * kept.x).sum(dim=0)))


def toy_inputs() -> ToyInputs:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    return ToyInputs(x, Affine(weight, bias, "label"), 3)


def test_a_nested_bundle_flattens_in_field_order_and_back():
    inputs, layout = toy_inputs(), bundle_layout(ToyInputs)
    values = flatten(layout, inputs)
    assert layout.size == len(values) == 5
    assert values[1] is inputs.affine.weight and values[3:] == ("label", 3)
    assert unflatten(layout, values) == inputs


def test_the_settings_kept_on_ctx_are_the_inputs_without_their_tensors():
    assert without_tensors(bundle_layout(ToyInputs), toy_inputs()) == ToyInputs(None, Affine(None, None, "label"), 3)


def test_gradients_go_to_the_inputs_they_name_and_none_to_the_others():
    x_grad, weight_grad = torch.ones(1), torch.zeros(1)
    gradients = ToyGradients(x=x_grad, affine=AffineGradients(weight=weight_grad))
    assert gradients_in_input_order(bundle_layout(ToyInputs), gradients) == (x_grad, weight_grad, None, None, None)


def test_a_gradient_that_names_no_input_is_refused():
    misnamed = NamedTuple("Misnamed", [("x", Tensor), ("wieght", Tensor)])(torch.ones(1), torch.ones(1))
    with pytest.raises(TypeError, match=r"Misnamed names \['wieght'\], not fields of ToyInputs"):
        gradients_in_input_order(bundle_layout(ToyInputs), misnamed)


def test_a_function_made_from_a_gates_mathematics_passes_gradcheck_and_leaves_unnamed_inputs_without_gradient():
    inputs = toy_inputs()

    def toy(x, weight):
        return ToyFunction.run(ToyInputs(x, Affine(weight, inputs.affine.bias, "label"), 3))

    assert torch.autograd.gradcheck(toy, (inputs.x, inputs.affine.weight))
    toy(inputs.x, inputs.affine.weight).sum().backward()
    assert inputs.affine.bias.grad is None


def test_run_takes_a_norm_exactly_when_the_function_recomputes_its_input():
    x, norm = torch.randn(2, 4, 3), NormAffine(torch.randn(2, 4, 3), torch.ones(4), torch.zeros(4))
    inputs = ChannelGateInputs(x, ("avg",), MLPParameters(*(torch.randn(s) for s in [(2, 4), (2,), (4, 2), (4,)])))
    with pytest.raises(TypeError, match="ChannelGateFunction.run: norm must be None"):
        ChannelGateFunction.run(inputs, norm)
    with pytest.raises(TypeError, match="ChannelGateAfterNormFunction.run: norm must be a NormAffine"):
        ChannelGateAfterNormFunction.run(inputs)


# --- gradcheck of every Function ---------------------------------------------------------------------
SHAPES = {1: (2, 4, 5), 2: (2, 4, 3, 3), 3: (2, 4, 2, 3, 2)}
POOLS = ("avg", "max", "lp", "lse")
HIDDEN = 2


def distinct(shape, requires_grad=True):
    """Values spaced 0.1 apart in random order: no ties anywhere, so every max is differentiable."""
    numel = torch.Size(shape).numel()
    order = torch.randperm(numel, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = (order / 10 - numel / 20).reshape(shape)
    return x.requires_grad_(requires_grad)


def mlp_parameters(channels, hidden=HIDDEN):
    torch.manual_seed(1)
    shapes = [(hidden, channels), (hidden,), (channels, hidden), (channels,)]
    return [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes]


def spatial_parameters(dims, kernel=3):
    torch.manual_seed(2)
    conv = torch.randn(1, 2, *(kernel,) * dims, dtype=torch.float64, requires_grad=True)
    bn_weight = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    bn_bias = torch.tensor([-0.2], dtype=torch.float64, requires_grad=True)
    return conv, bn_weight, bn_bias


def bn_arguments(training):
    """Batch statistics without running ones (training), or fixed running statistics (eval)."""
    if training:
        return None, None, True, 0.1, 1e-5
    return torch.tensor([0.3], dtype=torch.float64), torch.tensor([1.7], dtype=torch.float64), False, 0.1, 1e-5


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("pool_types", [("avg",), ("avg", "max"), POOLS], ids=["se", "cbam", "all-pools"])
def test_channel_gate_and_channel_weights_pass_gradcheck(dims, pool_types):
    x, params = distinct(SHAPES[dims]), mlp_parameters(SHAPES[dims][1])
    assert gradcheck(lambda x, *p: channel_gate(x, pool_types, MLPParameters(*p))[0], (x, *params))
    assert gradcheck(lambda x, *p: channel_weights(x, pool_types, MLPParameters(*p)), (x, *params))


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
def test_spatial_gate_passes_gradcheck(dims, training):
    x = distinct(SHAPES[dims])
    assert gradcheck(
        lambda x, *p: spatial_gate(x, SpatialGateParameters(*p, *bn_arguments(training)))[0],
        (x, *spatial_parameters(dims)),
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
@pytest.mark.parametrize("pool_types", [("avg", "max"), POOLS], ids=["cbam", "all-pools"])
def test_whole_cbam_function_passes_gradcheck(dims, training, pool_types):
    x, mlp = distinct(SHAPES[dims]), mlp_parameters(SHAPES[dims][1])

    def block(x, *params):
        return cbam(
            x, pool_types, MLPParameters(*params[:4]), SpatialGateParameters(*params[4:], *bn_arguments(training))
        )[0]

    assert gradcheck(block, (x, *mlp, *spatial_parameters(dims)))


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("combine", ["sum", "product"])
def test_bam_scale_passes_gradcheck(dims, combine):
    shape = SHAPES[dims]
    x = distinct(shape)
    channel = torch.randn(*shape[:2], *(1,) * dims, dtype=torch.float64, requires_grad=True)
    spatial = torch.randn(shape[0], 1, *shape[2:], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda *a: bam_scale(*a, combine), (x, channel, spatial))


# --- ties -------------------------------------------------------------------------------------------
def with_channel_ties(dims):
    """Distinct values, except that at two positions of each sample the maximum over channels is
    attained by exactly two channels."""
    x = distinct(SHAPES[dims], requires_grad=False)
    flat = x.flatten(2)
    for position in (0, -1):
        top2 = flat[:, :, position].topk(2, dim=1).indices
        for n in range(x.shape[0]):
            flat[n, top2[n, 1], position] = flat[n, top2[n, 0], position]
    return x.requires_grad_()


def with_position_ties(dims):
    """Distinct values, except that in every channel the maximum over positions is attained twice."""
    x = distinct(SHAPES[dims], requires_grad=False)
    flat = x.flatten(2)
    top2 = flat.topk(2, dim=2).indices
    flat.scatter_(2, top2[..., 1:], flat.gather(2, top2[..., :1]))
    return x.requires_grad_()


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gradcheck_holds_at_two_way_ties_of_the_channel_max(dims):
    """Splitting evenly is what central differences measure at a two-way tie."""
    x = with_channel_ties(dims)
    assert (x.detach() == x.detach().amax(dim=1, keepdim=True)).sum(dim=1).max() == 2
    parameters = [p.detach() for p in spatial_parameters(dims)]
    assert gradcheck(lambda x: spatial_gate(x, SpatialGateParameters(*parameters, *bn_arguments(True)))[0], (x,))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gradcheck_holds_at_two_way_ties_of_the_global_max(dims):
    x = with_position_ties(dims)
    assert (x.detach().flatten(2) == x.detach().flatten(2).amax(dim=2, keepdim=True)).sum(dim=2).min() == 2
    params = [p.detach() for p in mlp_parameters(SHAPES[dims][1])]
    assert gradcheck(lambda x: channel_gate(x, ("max",), MLPParameters(*params))[0], (x,))


def test_channel_max_gradient_is_split_evenly_among_any_number_of_ties():
    """d out / d x through the channel max, by the explicit formula: grad_max / k on each of the k
    channels that attain the maximum, 0 elsewhere. The conv has a tap on the max map alone, so the
    channel mean contributes nothing (4 channels, 3 tied at position 0, 3 tied at position 1)."""
    x = torch.tensor([[[1.0, 2.0], [3.0, 2.0], [3.0, 2.0], [3.0, -1.0]]], dtype=torch.float64, requires_grad=True)
    conv = torch.tensor([[[0.0], [0.0]]], dtype=torch.float64)
    conv[0, 0, 0] = 1.0  # conv output = channel max; BN with fixed statistics, weight 1, bias 0
    bn = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    running = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    out, spatial_map = spatial_gate(x, SpatialGateParameters(conv, *bn, *running, False, 0.1, 0.0))
    grad = torch.autograd.grad(out.sum(), x)[0]
    ms = spatial_map.detach()  # (1, 1, 2); Ms = sigmoid(channel max)
    ties = (x.detach() == x.detach().amax(dim=1, keepdim=True)).double()
    # out = x * Ms: the direct term Ms, plus sum_c x through Ms' = Ms (1 - Ms), shared by the k ties.
    expected = ms + ties / ties.sum(dim=1, keepdim=True) * ms * (1 - ms) * x.detach().sum(dim=1, keepdim=True)
    torch.testing.assert_close(grad, expected)
    through_max = grad - ms
    assert torch.allclose(through_max[0, 1:, 0], through_max[0, 1, 0]) and through_max[0, 0, 0].abs() < 1e-12


def test_global_max_gradient_is_split_evenly_among_any_number_of_ties():
    """Through the channel gate's max pool (3 tied maxima in channel 0, 2 in channel 1), each tied element
    gets 1/k of the gradient of its channel's maximum, 0 elsewhere; torch.amax follows the same rule."""
    x = torch.tensor([[[0.5, 0.1, 0.5, 0.5, 0.0], [0.2, 0.7, 0.7, -0.3, 0.1]]], dtype=torch.float64, requires_grad=True)
    params = [p.detach() for p in mlp_parameters(2)]
    grad = torch.autograd.grad(channel_weights(x, ("max",), MLPParameters(*params)).sum(), x)[0]
    # The same chain with the pool written as torch.amax, differentiated by autograd.
    reference_x = x.detach().requires_grad_()
    w1, b1, w2, b2 = params
    reference = torch.sigmoid(torch.relu(reference_x.amax(dim=2) @ w1.t() + b1) @ w2.t() + b2)
    expected = torch.autograd.grad(reference.sum(), reference_x)[0]
    torch.testing.assert_close(grad, expected)
    grad_of_max = expected.sum(dim=2, keepdim=True)  # d loss / d max_p x, per channel
    assert grad_of_max.abs().min() > 1e-3
    ties = (x.detach() == x.detach().amax(dim=2, keepdim=True)).double()
    torch.testing.assert_close(grad, ties / ties.sum(dim=2, keepdim=True) * grad_of_max)
