"""Fixtures of the inference tests: the tiny checkpoint exported once per format, shared by the export tests and
the real-footage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cbam3d.inference.export import export_main


@pytest.fixture(scope="session", params=["onnx", "pt2"])
def exported(request, tiny_checkpoint, tmp_path_factory) -> tuple[str, Path]:
    """(format, model path) of the tiny checkpoint exported through the command line."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    output = tmp_path_factory.mktemp(f"export_{request.param}") / f"model.{request.param}"
    status = export_main(["--checkpoint", str(tiny_checkpoint), "--format", request.param, "--output", str(output)])
    assert status == 0
    return request.param, output
