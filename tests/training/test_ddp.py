"""DDP on the CPU: two processes (gloo) under torchrun train a few steps, each on its own half of the videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent('''
    """Runs scripts/train.py's train() with a callback that records what each DDP process saw."""
    import json, sys
    import lightning as L
    import torch.distributed as dist
    from cbam3d.training import TrainConfig, train
    from cbam3d.training.cli import train_parser

    class Record(L.Callback):
        def __init__(self):
            self.videos, self.labels = [], []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.videos += batch["video_index"].tolist()
            self.labels += batch["label"].tolist()

        def on_train_end(self, trainer, module):
            record = {"rank": trainer.global_rank, "world_size": trainer.world_size, "backend": dist.get_backend(),
                      "strategy": type(trainer.strategy).__name__, "videos": self.videos,
                      "labels": self.labels}
            with open(f"{sys.argv[1]}/rank{trainer.global_rank}.json", "w") as file:
                json.dump(record, file)

    config = TrainConfig.from_arguments(train_parser().parse_args(sys.argv[2:]))
    config.callbacks = [Record()]
    train(config)
''')


def run_two_processes(tmp_path: Path, data: Path, flags: list[str]) -> list[dict]:
    """Train under torchrun with 2 CPU processes; what each rank saw."""
    (tmp_path / "driver.py").write_text(DRIVER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += [str(tmp_path / "driver.py"), str(tmp_path), "--data", str(data), "--accelerator", "cpu", *flags]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.slow  # two processes
def test_every_recipe_option_trains_under_ddp_with_even_class_counts_per_rank(tmp_path, make_tiny_dataset, tiny_run):
    """--class-balanced gives each rank even class counts; --ema and --precise-bn (statistics averaged across the
    processes) run under DDP."""
    data = make_tiny_dataset(tmp_path / "data")
    recipe = ["--class-balanced", "--ema", "0.9", "--precise-bn", "2", "--mixup", "0.5", "--augment", "trivialaugment"]
    ranks = run_two_processes(tmp_path, data, ["--output", str(tmp_path / "run"), "--epochs", "1", *tiny_run, *recipe])
    for record in ranks:
        counts = Counter(record["labels"])
        assert len(counts) > 1 and len(set(counts.values())) == 1, counts
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "moving average" in metrics["weights"]


def test_two_cpu_processes_under_torchrun_split_the_videos_and_write_one_set_of_outputs(
    tmp_path, make_tiny_dataset, tiny_run
):
    data = make_tiny_dataset(tmp_path / "data")
    output = tmp_path / "run"
    ranks = run_two_processes(tmp_path, data, ["--output", str(output), "--epochs", "1", *tiny_run])
    for rank, record in enumerate(ranks):
        assert record["rank"] == rank and record["world_size"] == 2
        assert record["backend"] == "gloo" and record["strategy"] == "DDPStrategy"
    seen = [set(record["videos"]) for record in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # the distributed sampler shards the videos

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["val_top1"] <= 1.0
    assert (output / "checkpoints" / "last.ckpt").is_file()
    assert (output / "curves.png").is_file()
