"""The benchmark: its hand-written references compute the same functions as cbam3d's blocks (so the
comparison is fair), its memory count is exact, and the command writes its table and JSON."""

import json

import pytest
import torch
from torch import nn

from cbam3d import BAM, CBAM, SE
from cbam3d.benchmark.blocks import block_shape
from cbam3d.benchmark.cli import benchmark_main
from cbam3d.benchmark.measure import Timing, saved_bytes
from cbam3d.benchmark.networks import model_results
from cbam3d.benchmark.reference import NaiveCBAM, naive_like


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda dims: SE(16, dims=dims),
        lambda dims: CBAM(16, dims=dims, kernel_size=5),
        lambda dims: BAM(16, dims=dims),
        lambda dims: BAM(16, dims=dims, combine="product"),
    ],
    ids=["se", "cbam", "bam-sum", "bam-product"],
)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_naive_reference_computes_the_same_function_as_the_block(make, dims, train):
    torch.manual_seed(0)
    ours = make(dims).train(train)
    naive = naive_like(ours).train(train)
    x = torch.randn(block_shape((2, 16, 3, 5, 6), dims))
    torch.testing.assert_close(naive(x), ours(x), rtol=1e-5, atol=1e-5)


def test_naive_cbam_refuses_variants_it_does_not_reproduce():
    with pytest.raises(ValueError, match="default CBAM"):
        NaiveCBAM(CBAM(16, dims=3, spatial_mode="factorized"))


def test_saved_bytes_counts_unique_storages_and_skips_parameters():
    """x * w keeps x and w; x * x keeps x once; a Linear keeps its input, not its weight."""

    class Product(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x.mean(dim=1, keepdim=True))  # sigmoid keeps its (N, 1, L) output

    x = torch.randn(4, 8, 16, requires_grad=True)
    assert saved_bytes(Product(), x) == x.numel() * 4 + 4 * 16 * 4
    linear = nn.Linear(16, 3)
    assert saved_bytes(linear, x) == x.numel() * 4


def test_block_shape_keeps_the_element_count_in_every_dims():
    shape = (2, 8, 3, 5, 7)
    assert block_shape(shape, 3) == shape
    assert block_shape(shape, 2) == (6, 8, 5, 7)
    assert block_shape(shape, 1) == (2, 8, 105)


def test_script_writes_the_markdown_table_and_json(tmp_path):
    args = [
        "--quick",
        "--shape",
        "2",
        "16",
        "2",
        "6",
        "6",
        "--dims",
        "2",
        "3",
        "--blocks",
        "se",
        "cbam",
        "--models",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--kernel-size",
        "3",
        "--json",
        str(tmp_path / "b.json"),
        "--markdown",
        str(tmp_path / "b.md"),
    ]
    table = benchmark_main(args)
    data = json.loads((tmp_path / "b.json").read_text())
    assert len(data["results"]) == 8  # 2 dims x 2 blocks x (naive, cbam3d)
    cbam = {r["variant"]: r for r in data["results"] if r["case"] == "cbam 3d k=3"}
    assert cbam["cbam3d"]["saved_ratio"] < 1.25 < 2 < cbam["naive"]["saved_ratio"]
    assert cbam["naive"]["ratios"]["vs_naive:train_speedup"] == 1.0
    assert all(r["train_ms"] > 0 for r in data["results"])
    assert table in (tmp_path / "b.md").read_text()
    assert "| cbam 3d k=3 | cbam3d | 2x16x2x6x6 |" in table


def test_network_cases_put_cbam3d_cbam_below_the_hand_written_one_in_memory():
    """The network rows build the plain, cbam3d and hand-written variants side by side; on a tiny clip
    the hand-written CBAM keeps more for backward than cbam3d's (it also keeps x * Mc)."""
    timing = Timing(torch.device("cpu"), repeats=0, warmup=0)
    results = model_results("resnet3d-10", attention=["cbam"], clip=(2, 3, 4, 32, 32), timing=timing, kernel_size=3)
    saved = {r.variant: r.ratios["vs_plain:saved"] for r in results}
    assert saved["plain"] == 1.0 < saved["cbam"] < saved["naive-cbam"]
