"""``cbam3d benchmark``'s command line (cbam3d.benchmark.cli): settings out of range and a device that is not there,
each refused in one line before any timing."""

from __future__ import annotations

import pytest
import torch

from cbam3d.benchmark.cli import benchmark_main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "-1"], "--repeats must be at least 0, got -1"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--shape", "0", "16", "4", "8", "8"], "--shape sizes must be positive"),
        (["--device", "nonsense"], "--device 'nonsense'"),
        (["--json", "/no/such/folder/results.json"], "expected a file in an existing folder"),
    ],
)
def test_benchmark_options_out_of_range_are_one_line_before_any_timing(usage_error, argv, message):
    assert message in usage_error(benchmark_main, ["--quick", *argv])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_benchmark_on_cuda_without_a_gpu_is_one_line(usage_error):
    assert "no CUDA device is available" in usage_error(benchmark_main, ["--quick", "--device", "cuda"])
