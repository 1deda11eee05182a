"""docs/examples/volume_segmentation.py runs on the CPU at a small size and both networks learn."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("monai")

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "volume_segmentation.py"


def test_volume_segmentation_example_loss_falls_and_dice_rises_with_and_without_cbam(load_script, capsys):
    results = load_script(EXAMPLE).main(["--size", "16", "--steps", "100", "--width", "8", "--volumes", "8"])
    assert set(results) == {"plain", "cbam"}
    for result in results.values():
        assert result.last_loss < 0.8 * result.first_loss
        assert result.dice_after > result.dice_before + 0.3
    assert "Dice after" in capsys.readouterr().out


def test_volume_segmentation_example_rejects_a_bad_size(load_script, capsys):
    with pytest.raises(SystemExit):
        load_script(EXAMPLE).parse_args(["--size", "18"])
    assert "--size must be a multiple of 4" in capsys.readouterr().err
