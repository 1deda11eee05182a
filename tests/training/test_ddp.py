"""DDP on the CPU: two processes (gloo) under torchrun train a few steps, each on its own half of the videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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
            self.videos = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.videos += batch["video_index"].tolist()

        def on_train_end(self, trainer, module):
            record = {"rank": trainer.global_rank, "world_size": trainer.world_size, "backend": dist.get_backend(),
                      "strategy": type(trainer.strategy).__name__, "videos": self.videos}
            with open(f"{sys.argv[1]}/rank{trainer.global_rank}.json", "w") as file:
                json.dump(record, file)

    config = TrainConfig.from_arguments(train_parser().parse_args(sys.argv[2:]))
    config.callbacks = [Record()]
    train(config)
''')


def test_two_cpu_processes_under_torchrun_split_the_videos_and_write_one_set_of_outputs(
    tmp_path, make_tiny_dataset, tiny_run
):
    data = make_tiny_dataset(tmp_path / "data")
    (tmp_path / "driver.py").write_text(DRIVER)
    output = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(tmp_path / "driver.py"),
        str(tmp_path),
        "--data",
        str(data),
        "--output",
        str(output),
        "--epochs",
        "1",
        "--accelerator",
        "cpu",
        *tiny_run,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for rank, record in enumerate(ranks):
        assert record["rank"] == rank and record["world_size"] == 2
        assert record["backend"] == "gloo" and record["strategy"] == "DDPStrategy"
    seen = [set(record["videos"]) for record in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # the distributed sampler shards the videos

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["val_top1"] <= 1.0
    assert (output / "checkpoints" / "last.ckpt").is_file()
    assert (output / "curves.png").is_file()
