"""What importing costs: ``import cbam3d`` loads the attention core only (no training, inference, drawing or video
decoding), and the inference package runs without Lightning."""

from __future__ import annotations

import subprocess
import sys


def test_import_cbam3d_imports_neither_the_viz_package_nor_matplotlib():
    code = (
        "import sys, cbam3d, cbam3d.attention.hooks; "
        "print([m for m in ('cbam3d.viz', 'matplotlib', 'av') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_import_cbam3d_leaves_training_out_and_inference_needs_no_lightning():
    code = (
        "import sys, cbam3d; assert 'cbam3d.inference' not in sys.modules; "
        "from cbam3d.inference import load_checkpoint, predict_files, evaluate_checkpoint; "
        "assert 'lightning' not in sys.modules, 'lightning imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
