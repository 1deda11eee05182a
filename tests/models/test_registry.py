"""The network registry (register_model, create_model, MODEL_NAMES) and the package's public names."""

from __future__ import annotations

import doctest
import functools
import importlib

import pytest
import torch
from torch import nn

from cbam3d import models
from cbam3d.models import registry

DEPTHS = (10, 18, 34, 50, 101, 152, 200)


def tiny_net(*, num_classes: int = 400, attention=None, attention_kwargs=None, width: int = 8) -> nn.Module:
    """A user's network: (N, C, T, H, W) -> (N, num_classes) through a hidden layer of ``width``."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes))


@pytest.fixture
def registered():
    """``tiny-net`` registered for the test (taking options) and unregistered after it."""
    models.register_model("tiny-net")(tiny_net)
    yield "tiny-net"
    models.unregister_model("tiny-net")


def test_model_names_cover_both_families_and_torchvision_in_order():
    expected = (
        [f"resnet3d-{d}" for d in DEPTHS] + [f"r2plus1d-{d}" for d in DEPTHS] + ["r3d_18", "mc3_18", "r2plus1d_18"]
    )
    assert list(models.MODEL_NAMES) == expected
    assert len(models.MODEL_NAMES) == 17 and models.MODEL_NAMES[-1] == "r2plus1d_18"


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_create_model_builds_every_name_with_fc_as_the_classifier(name):
    with torch.device("meta"):
        model = models.create_model(name, num_classes=7, attention="cbam")
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7
    assert any(getattr(block, "attention", None) is not None for block in model.layer1)


def test_create_model_passes_the_depth_and_options_to_the_family():
    with torch.device("meta"):
        model = models.create_model("r2plus1d-50", num_classes=3, conv1_t_size=3, no_max_pool=True)
    assert model.conv1_t.kernel_size == (3, 1, 1) and model.maxpool is None
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]


def test_create_model_rejects_unknown_names_listing_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown model 'resnet3d-11'; expected one of resnet3d-10, resnet3d-18.*r2plus1d_18"
    ):
        models.create_model("resnet3d-11")


def test_fixed_architectures_refuse_options_naming_them():
    with pytest.raises(
        ValueError, match=r"r3d_18 has a fixed architecture and takes no options, got \['conv1_t_size'\]"
    ):
        models.create_model("r3d_18", conv1_t_size=3)


def test_a_registered_network_is_built_by_name_with_its_options(registered):
    model = models.create_model(registered, num_classes=5, width=4)
    assert model(torch.zeros(2, 3, 2, 4, 4)).shape == (2, 5)
    assert model[1].out_features == 4


def test_model_names_is_a_live_view_of_registrations_and_removals():
    """MODEL_NAMES bound before a registration (as cbam3d.training.settings binds it) sees it, and its removal."""
    from cbam3d.models import MODEL_NAMES

    models.register_model("tiny-net")(tiny_net)
    try:
        assert "tiny-net" in MODEL_NAMES and MODEL_NAMES[-1] == "tiny-net"
        assert ", ".join(MODEL_NAMES).endswith("r2plus1d_18, tiny-net")
    finally:
        models.unregister_model("tiny-net")
    assert "tiny-net" not in MODEL_NAMES and len(MODEL_NAMES) == 17


def test_unknown_name_message_lists_registered_networks(registered):
    with pytest.raises(ValueError, match="r2plus1d_18, tiny-net$"):
        models.create_model("tiny_net")


def test_registering_a_taken_name_is_refused_unless_replacing(registered):
    with pytest.raises(ValueError, match="model 'tiny-net' is already registered"):
        models.register_model(registered)(tiny_net)
    with pytest.raises(ValueError, match="model 'r3d_18' is already registered"):
        models.register_model("r3d_18")(tiny_net)
    models.register_model(registered, replace=True)(functools.partial(tiny_net, width=6))
    assert models.create_model(registered, num_classes=2)[1].out_features == 6


def test_the_decorator_returns_the_builder_unchanged():
    builder = models.register_model("decorated-net", takes_options=False)(tiny_net)
    try:
        assert builder is tiny_net
        with pytest.raises(ValueError, match="decorated-net has a fixed architecture and takes no options"):
            models.create_model("decorated-net", width=4)
    finally:
        models.unregister_model("decorated-net")


@pytest.mark.parametrize("name", ["", "3d-net", "my net", None])
def test_register_model_rejects_names_that_are_not_identifiers(name):
    with pytest.raises(ValueError, match="must start with a letter"):
        models.register_model(name)


def test_register_model_rejects_a_builder_that_is_not_callable():
    with pytest.raises(TypeError, match="decorates a builder function, got int"):
        models.register_model("number-net")(3)
    assert "number-net" not in models.MODEL_NAMES


def test_create_model_rejects_a_builder_that_returns_no_module():
    models.register_model("string-net")(lambda **kwargs: "not a module")
    try:
        with pytest.raises(TypeError, match="builder of model 'string-net' must return an nn.Module, got str"):
            models.create_model("string-net")
    finally:
        models.unregister_model("string-net")


def test_unregister_model_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="no model is registered under 'tiny-net'"):
        models.unregister_model("tiny-net")


def test_the_registry_docstring_example_runs():
    failures, attempted = doctest.testmod(registry, verbose=False)
    assert attempted > 0 and failures == 0


def test_the_package_exports_the_builders_and_the_retrofit_inflate_convert_api():
    assert sorted(models.__all__) == sorted(
        [
            "MODEL_NAMES", "create_model", "model_builder", "register_model", "unregister_model",
            "resnet3d", "r2plus1d", "r3d_18", "mc3_18", "r2plus1d_18", "resnet2d",
            "add_attention", "inflate", "from_torchvision", "to_torchvision",
            "count_parameters", "count_gmacs",
            "ResNet", "ResidualBlock",
        ]
    )  # fmt: skip
    assert all(hasattr(models, name) for name in models.__all__)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("blocks", "BasicBlock"),
        ("blocks", "Bottleneck"),
        ("blocks", "ZeroPadShortcut"),
        ("resnet", "init_weights"),
        ("attention_plan", "AttentionPlan"),
        ("attention_plan", "plan_attention"),
        ("inflation", "inflate_tensor"),
        ("retrofit", "AttentionAfter"),
        ("retrofit", "IdentityInitAttention"),
        ("complexity", "measure"),
    ],
)
def test_internals_live_in_their_modules_only(module, name):
    assert not hasattr(models, name)
    assert hasattr(importlib.import_module(f"cbam3d.models.{module}"), name)


def test_no_submodule_is_shadowed_by_a_package_attribute():
    """``import cbam3d.models.<module> as m`` gives the module (a function of the same name would win)."""
    for module in ("inflation", "places", "attention_plan", "registry", "complexity", "retrofit", "video"):
        assert getattr(models, module) is importlib.import_module(f"cbam3d.models.{module}")
