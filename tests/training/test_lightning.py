"""The Lightning parts of training (cbam3d.training.lightning): top-k counting, checkpoints written atomically, and
a batch of only unreadable clips skipped alone and joined with zero gradients under DDP."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("lightning")

from cbam3d.inference import ClipSpec, ModelSpec
from cbam3d.training import AtomicCheckpointIO
from cbam3d.training.lightning import VideoClassifier, topk_correct


def test_topk_correct_counts_rows_whose_label_is_among_the_k_best():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert topk_correct(logits, labels, 1).item() == 1
    assert topk_correct(logits, labels, 2).item() == 2
    assert topk_correct(logits, labels, 5).item() == 3  # k above the class count means every class


def test_checkpoint_io_writes_a_temporary_file_in_the_same_folder_and_renames_it(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def recording_replace(source, destination):
        renames.append((Path(source), Path(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    assert len(renames) == 1 and renames[0][1] == target
    assert renames[0][0].parent == target.parent and renames[0][0] != target
    assert torch.equal(torch.load(target, weights_only=True)["state_dict"]["w"], torch.ones(2))


def test_checkpoint_io_interrupted_mid_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 3}, target)
    real_save = torch.save

    def crashing_save(obj, file, *args, **kwargs):
        real_save({"epoch": 4, "partial": torch.zeros(1000)}, file)
        raise KeyboardInterrupt  # the job is killed after part of the bytes went out

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 4}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"epoch": 3}
    assert os.listdir(tmp_path) == ["last.ckpt"]


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_batch_of_only_unreadable_clips_is_skipped_alone_and_joined_with_zero_gradients_under_ddp(world_size):
    """Skipping the step is fine in one process; under DDP the process must still take part in the gradient
    all-reduce that the others wait in, so it returns a zero loss that reaches every parameter."""
    spec = ModelSpec("resnet3d-10", "cbam", {}, {"widen_factor": 0.125, "no_max_pool": True})
    clip = ClipSpec(4, 2, 32, (0.43, 0.39, 0.38), (0.23, 0.22, 0.22), eval_resize=36)
    module = VideoClassifier(spec, clip, ["a", "b"])
    module._trainer = SimpleNamespace(world_size=world_size)  # the one Trainer attribute training_step reads
    empty = {"video": torch.zeros(0, 3, 4, 32, 32), "label": torch.zeros(0, dtype=torch.long), "skipped": 2}
    loss = module.training_step(empty, 0)
    assert module.skipped_clips == 2
    if world_size == 1:
        assert loss is None
        return
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())
