"""create_model / MODEL_NAMES, and the parameter / GFLOP table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cbam3d import models
from cbam3d.models.complexity import PUBLISHED, markdown_table, measure, measure_models, replace_between_markers

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_model_names_cover_both_families_and_torchvision():
    depths = (10, 18, 34, 50, 101, 152, 200)
    expected = (
        [f"resnet3d-{d}" for d in depths] + [f"r2plus1d-{d}" for d in depths] + ["r3d_18", "mc3_18", "r2plus1d_18"]
    )
    assert list(models.MODEL_NAMES) == expected


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_create_model_builds_every_name_with_fc_as_the_classifier(name):
    with torch.device("meta"):
        model = models.create_model(name, num_classes=7, attention="cbam")
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7
    assert any(getattr(block, "attention", None) is not None for block in model.layer1)


def test_create_model_passes_options_to_the_family():
    with torch.device("meta"):
        model = models.create_model("r2plus1d-18", num_classes=3, conv1_t_size=3, no_max_pool=True)
    assert model.conv1_t.kernel_size == (3, 1, 1) and model.maxpool is None


def test_create_model_rejects_unknown_names_listing_the_valid_ones():
    with pytest.raises(ValueError, match="resnet3d-10, resnet3d-18.*r2plus1d_18"):
        models.create_model("resnet3d-11")
    with pytest.raises(ValueError, match="takes no options"):
        models.create_model("r3d_18", conv1_t_size=3)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_measured_complexity_matches_torchvision_published_figures(name):
    """Parameters equal torchvision's exactly and GFLOPs (multiply-adds) match its _ops to 3 decimals."""
    params, gmacs, _ = PUBLISHED[name]
    measured = measure(lambda: models.create_model(name))
    assert measured.parameters == params
    assert measured.gmacs == pytest.approx(gmacs, abs=5e-4)


def test_markdown_table_lists_every_model_and_attention_with_published_figures():
    table = markdown_table(measure_models(["r3d_18", "resnet3d-10"], [None, "cbam"]))
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`r3d_18`", "`resnet3d-10`"]
    assert "33.37M / 40.70 (torchvision)" in rows[0] and rows[1].rstrip().endswith("| - |")
    assert "+ CBAM" in table.splitlines()[2]


def test_replace_between_markers_keeps_the_rest_of_the_file():
    text = "intro\n<!-- model-table:start -->\nold\n<!-- model-table:end -->\noutro\n"
    assert (
        replace_between_markers(text, "new")
        == "intro\n<!-- model-table:start -->\nnew\n<!-- model-table:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="markers"):
        replace_between_markers("no markers", "new")


def test_model_table_script_writes_the_table_into_a_readme(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n<!-- model-table:start -->\n<!-- model-table:end -->\n")
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.delitem(sys.modules, "model_table", raising=False)
    import model_table

    model_table.main(["--models", "mc3_18", "--attention", "none", "se", "--readme", str(readme)])
    written = readme.read_text()
    assert "| `mc3_18` | 11.70M / 43.34 |" in written and written.startswith("# t\n")
    assert "mc3_18" in capsys.readouterr().out
