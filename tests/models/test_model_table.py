"""scripts/model_table.py: the README's parameter / GFLOP table, measured by cbam3d.models.complexity."""

from __future__ import annotations

from pathlib import Path

import pytest

from cbam3d import models
from cbam3d.models.complexity import measure, measure_models

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "model_table.py"


@pytest.fixture(scope="module")
def model_table(load_script):
    """The script, imported as a module."""
    return load_script(SCRIPT)


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_measured_complexity_matches_torchvision_published_figures(name, model_table):
    """Parameters equal torchvision's exactly and GFLOPs (multiply-adds) match its _ops to 3 decimals."""
    params, gmacs, _ = model_table.PUBLISHED[name]
    measured = measure(lambda: models.create_model(name))
    assert measured.parameters == params
    assert measured.gmacs == pytest.approx(gmacs, abs=5e-4)


def test_markdown_table_lists_every_model_and_attention_with_published_figures(model_table):
    table = model_table.markdown_table(measure_models(["r3d_18", "resnet3d-10"], [None, "cbam"]))
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`r3d_18`", "`resnet3d-10`"]
    assert "33.37M / 40.70 (torchvision)" in rows[0] and rows[1].rstrip().endswith("| - |")
    assert "+ CBAM" in table.splitlines()[2]


def test_replace_between_markers_keeps_the_rest_of_the_file(model_table):
    text = "intro\n<!-- model-table:start -->\nold\n<!-- model-table:end -->\noutro\n"
    assert (
        model_table.replace_between_markers(text, "new")
        == "intro\n<!-- model-table:start -->\nnew\n<!-- model-table:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="markers"):
        model_table.replace_between_markers("no markers", "new")


def test_model_table_script_writes_the_table_into_a_readme(tmp_path, capsys, model_table):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n<!-- model-table:start -->\n<!-- model-table:end -->\n")
    model_table.main(["--models", "mc3_18", "--attention", "none", "se", "--readme", str(readme)])
    written = readme.read_text()
    assert "| `mc3_18` | 11.70M / 43.34 |" in written and written.startswith("# t\n")
    assert "mc3_18" in capsys.readouterr().out


def test_model_table_script_refuses_a_readme_without_markers_before_measuring(tmp_path, capsys, model_table):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(SystemExit):
        model_table.main(["--models", "mc3_18", "--readme", str(readme)])
    assert "--readme" in capsys.readouterr().err and readme.read_text() == "# no table here\n"


def test_model_table_script_offers_networks_registered_later(model_table):
    """--models reads the live registry: a network registered after the script's import is a valid choice."""
    models.register_model("late-net")(lambda **kwargs: None)
    try:
        args, _ = model_table.parse_args(["--models", "late-net"])
    finally:
        models.unregister_model("late-net")
    assert args.models == ["late-net"]
