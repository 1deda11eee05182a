"""DDP: two CPU processes (gloo) under torchrun train a few steps, each on its own half of the videos; and in one
process (gloo on the CPU, NCCL on CUDA) DDP takes the steps of the plain network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from cbam3d.models import create_model

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
                      "labels": self.labels, "bucket_view": trainer.strategy.model.gradient_as_bucket_view}
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
        assert record["backend"] == "gloo" and record["strategy"] == "DDPStrategy" and record["bucket_view"]
    seen = [set(record["videos"]) for record in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # the distributed sampler shards the videos

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["val_top1"] <= 1.0
    assert (output / "checkpoints" / "last.ckpt").is_file()
    assert (output / "curves.png").is_file()


BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def test_ddp_in_one_process_takes_the_steps_of_the_plain_network(tmp_path, device):
    """torch's DistributedDataParallel at world size 1 in this process (gloo on the CPU, NCCL on CUDA; a file://
    store): a few SGD steps of a small resnet3d with CBAM (channels_last_3d on CUDA) leave the parameters of the
    same steps without DDP (all-reduce over one process averages nothing; float32, TF32 off)."""
    torch.manual_seed(0)
    memory_format = torch.channels_last_3d if device.type == "cuda" else torch.contiguous_format
    options = {"widen_factor": 0.125, "no_max_pool": True}
    plain = create_model("resnet3d-10", num_classes=3, attention="cbam", **options).to(
        device, memory_format=memory_format
    )
    replica = create_model("resnet3d-10", num_classes=3, attention="cbam", **options).to(
        device, memory_format=memory_format
    )
    replica.load_state_dict(plain.state_dict())
    dist.init_process_group(BACKENDS[device.type], init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(replica, device_ids=[device.index or 0] if device.type == "cuda" else None)
        optimizers = [torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) for model in (plain, wrapped)]
        for _ in range(3):
            clips = torch.randn(4, 3, 4, 32, 32, device=device).contiguous(memory_format=memory_format)
            labels = torch.arange(4, device=device) % 3
            for model, optimizer in zip((plain, wrapped), optimizers):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(clips), labels).backward()
                optimizer.step()
        assert dist.get_backend() == BACKENDS[device.type]
    finally:
        dist.destroy_process_group()
    for (name, p), p_ddp in zip(plain.named_parameters(), replica.parameters()):
        torch.testing.assert_close(p_ddp, p, rtol=1e-5, atol=1e-6, msg=name)
