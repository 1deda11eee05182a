"""Bad input fails at the call with a ValueError/TypeError that names what is wrong and what was expected."""

import pytest
import torch

from cbam3d import BAM, CBAM, SE
from cbam3d.attention.registry import attention_names, create_attention


@pytest.mark.parametrize("module", [CBAM(16, dims=3), BAM(16, dims=3), SE(16, dims=3)], ids=["cbam", "bam", "se"])
def test_an_input_with_the_wrong_number_of_dimensions_is_refused_naming_the_layout(module):
    with pytest.raises(
        ValueError, match=r"dims=3\) expects a 5-D input \(N, C, T, H, W\), got a 4-D tensor of shape \(2, 16, 8, 8\)"
    ):
        module(torch.randn(2, 16, 8, 8))


@pytest.mark.parametrize("module", [CBAM(16), BAM(16), SE(16)], ids=["cbam", "bam", "se"])
def test_an_input_with_other_channels_than_the_module_is_refused(module):
    with pytest.raises(ValueError, match=r"built for 16 channels, got an input with 12 channels"):
        module(torch.randn(2, 12, 8, 8))


def test_error_names_the_module_the_user_called():
    with pytest.raises(ValueError, match=r"^CBAM was built"):
        CBAM(16)(torch.randn(2, 12, 8, 8))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_an_integer_tensor_is_refused_as_a_type_error(dtype):
    with pytest.raises(TypeError, match=rf"expects a floating-point tensor, got dtype {dtype}"):
        CBAM(16)(torch.ones(2, 16, 8, 8, dtype=dtype))


def test_a_value_that_is_not_a_tensor_is_refused_as_a_type_error():
    with pytest.raises(TypeError, match="expects a torch.Tensor, got list"):
        SE(4, dims=1)([[1.0]])


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: CBAM(16, pool_types=("avg", "median")),
            ValueError,
            r"unknown pool type 'median': expected one of \('avg', 'max', 'lp', 'lse'\)",
        ),
        (lambda: CBAM(16, pool_types=()), ValueError, "at least one"),
        (lambda: BAM(16, combine="mean"), ValueError, r"unknown combine 'mean': expected one of \('sum', 'product'\)"),
        (lambda: CBAM(16, dims=4), ValueError, "dims must be 1, 2 or 3"),
        (lambda: SE(16, dims=0), ValueError, "dims must be 1, 2 or 3"),
        (lambda: BAM(16, dims="3"), TypeError, "dims must be an int"),
        (lambda: CBAM(0), ValueError, "channels must be >= 1, got 0"),
        (lambda: SE(-3), ValueError, "channels must be >= 1, got -3"),
        (lambda: SE(16.0), TypeError, "channels must be an int"),
        (lambda: CBAM(16, reduction=0), ValueError, "reduction must be >= 1"),
        (lambda: CBAM(16, kernel_size=4), ValueError, "must be odd"),
        (lambda: CBAM(16, dims=3, kernel_size=(3, 7)), ValueError, "sequence of 3 ints"),
        (lambda: CBAM(16, dims=2, spatial_mode="factorized"), ValueError, "needs a time axis"),
        (lambda: CBAM(16, dims=3, spatial_mode="framewise", kernel_size=(3, 7, 7)), ValueError, r"\(1, kh, kw\)"),
        (lambda: CBAM(16, dims=3, spatial_mode="temporal"), ValueError, "unknown spatial_mode"),
        (lambda: CBAM(16, gate_order="spatial_first"), ValueError, "unknown gate_order"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_constructor_arguments_are_refused_naming_what_was_expected(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_failed_call_leaves_a_lazy_module_unbuilt():
    lazy = CBAM(dims=3)
    with pytest.raises(ValueError):
        lazy(torch.randn(2, 16, 8, 8))
    assert lazy.channels is None
    assert lazy(torch.randn(2, 16, 2, 8, 8)).shape == (2, 16, 2, 8, 8)


@pytest.mark.parametrize("name", attention_names())
@pytest.mark.parametrize("lazy", [False, True], ids=["built", "lazy"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_every_attention_refuses_an_input_of_another_dtype_than_its_parameters_alike(name, lazy, dtype):
    """One TypeError for every module (as torch's layers refuse one), never a result in a dtype its parameters
    are not in; a lazy module's first input decides its dtype."""
    module = create_attention(name, None if lazy else 16, dims=2)
    module(torch.randn(2, 16, 6, 6))
    with pytest.raises(TypeError, match=rf"^\w+ holds torch.float32 parameters but got a {dtype} input: convert"):
        module(torch.randn(2, 16, 6, 6, dtype=dtype))
    assert module.double()(torch.randn(2, 16, 6, 6, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("name", attention_names())
def test_every_attention_takes_the_dtype_autocast_gives_it(name):
    module = create_attention(name, 16, dims=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert module(torch.randn(2, 16, 6, 6, dtype=torch.bfloat16)).shape == (2, 16, 6, 6)
