"""The wiring of the fused Functions (cbam3d.attention.functional.wiring): named bundles in and out of
``Function.apply``'s positional arguments, and one Function made from a gate's mathematics alone."""

from typing import NamedTuple

import pytest
import torch
from torch import Tensor

from cbam3d.attention.functional import (
    ChannelGateAfterNormFunction,
    ChannelGateFunction,
    ChannelGateInputs,
    MLPParameters,
    NormAffine,
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
