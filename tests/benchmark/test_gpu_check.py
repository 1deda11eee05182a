"""scripts/gpu_check.sh and its report (scripts/gpu_report.py): the benchmark's CUDA rows with peers and compiled
training steps (on CUDA; the same body on the CPU without compiling), read into the report's figures and targets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cbam3d.benchmark.cli import benchmark_main

pytest.importorskip("monai")
pytest.importorskip("timm")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="12.5">
<testcase classname="tests.a" name="test_ok" time="1"/>
<testcase classname="tests.a" name="test_bad" time="1"><failure message="boom">boom</failure></testcase>
<testcase classname="tests.b" name="test_skipped" time="0"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_the_benchmark_rows_with_peers_give_the_reports_figures(device, tmp_path, load_script, capsys):
    """``cbam3d benchmark --peers`` at a tiny size (on CUDA under bf16 autocast, with the compiled blocks and
    training steps) writes the rows the report reads: CBAM against the hand-written block, the step with CBAM
    against the plain one and the clips per second that step needs; pytest's JUnit XML gives the counts."""
    flags = ["--dims", "3", "--blocks", "cbam", "--models", "--shape", "2", "16", "2", "8", "8"]
    flags += ["--repeats", "2", "--warmup", "1", "--step-model", "resnet3d-10", "--step-attention", "cbam"]
    flags += ["--step-clip", "2", "3", "4", "32", "32", "--step-repeats", "1", "--kernel-size", "3"]
    if device.type == "cuda":
        flags += ["--device", "cuda", "--amp", "bf16", "--compile-networks"]
    else:
        flags += ["--no-compile-blocks"]
    benchmark = tmp_path / "benchmark.json"
    benchmark_main(["--peers", *flags, "--json", str(benchmark)])
    (tmp_path / "pytest.xml").write_text(JUNIT)
    report = load_script(SCRIPTS / "gpu_report.py")
    argv = ["--junit", str(tmp_path / "pytest.xml"), "--benchmark", str(benchmark), "--stage", "pytest=ok"]
    assert report.main([*argv, "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")]) == 0
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["stages"] == {"pytest": "ok"}
    assert written["pytest"] == {
        "tests": 3, "passed": 1, "failed": 1, "skipped": 1, "seconds": 12.5, "failures": ["tests.a::test_bad"]
    }  # fmt: skip
    figures = written["benchmark"]
    assert figures["device"].startswith(device.type)
    assert figures["cbam_block"]["speedup_vs_eager"]["value"] > 0
    compiled = figures["cbam_block"]["speedup_vs_compiled"]
    assert (compiled["value"] is not None) == (device.type == "cuda") and compiled["target"] == ">= 1"
    modes = {"eager", "compiled"} if device.type == "cuda" else {"eager"}
    assert modes <= set(figures["training_step"])
    for mode in modes:
        step = figures["training_step"][mode]
        assert step["cbam_vs_plain_time"]["value"] == pytest.approx(step["cbam_ms"] / step["plain_ms"])
        assert step["clips_per_s_needed"] == pytest.approx(2 / (step["cbam_ms"] / 1000))
    markdown = (tmp_path / "r.md").read_text()
    assert "1 passed, 1 failed, 1 skipped of 3" in markdown and "resnet3d-10 training step" in markdown


def test_the_gpu_check_refuses_a_missing_wheels_folder_with_its_usage(tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPTS / "gpu_check.sh"), str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.startswith("usage: scripts/gpu_check.sh WHEELS_DIR [OUT_DIR]")
