"""The Lightning parts of training (cbam3d.training.lightning): top-k counting, checkpoints written atomically, and
a batch of only unreadable clips skipped alone and joined with zero gradients under DDP."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("lightning")

from cbam3d.inference import ClipSpec, ModelSpec
from cbam3d.training import AtomicCheckpointIO
from cbam3d.training.lightning import VideoClassifier, VideoDataModule, topk_correct
from cbam3d.utils.errors import UsageError


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


def _data_set_with_empty_files(root, real_video, *, real_per_class: int, empty: int):
    """Two class folders of ``real_per_class`` copies of a real video each, and ``empty`` zero-byte .mp4 in the
    first."""
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(real_per_class):
            shutil.copy(real_video, root / name / f"real{index}.mp4")
    for index in range(empty):
        (root / "a" / f"empty{index}.mp4").write_bytes(b"")
    return root


def test_a_few_unopenable_videos_are_left_out_with_one_line_before_training(tmp_path, make_noise_video):
    """Below the limit: one warning per split that holds some, naming how many, and the files are out of the
    split (no substitute steps, no warning per file and epoch)."""
    real = make_noise_video(tmp_path / "real.mp4", frames=8)
    root = _data_set_with_empty_files(tmp_path / "data", real, real_per_class=40, empty=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = VideoDataModule(root, frames=4, size=32)
    lines = [str(w.message) for w in caught if "cannot be opened" in str(w.message)]
    assert 1 <= len(lines) <= 2 and all("and are left out, e.g." in line for line in lines)
    assert sum(int(line.split(" of the ")[0]) for line in lines) == 2
    records = data.train_split.records + data.val_split.records
    assert len(records) == 80 and all(r.path.name.startswith("real") for r in records)


def test_many_unopenable_videos_stop_before_training_naming_how_many_and_a_few(tmp_path, make_noise_video):
    real = make_noise_video(tmp_path / "real.mp4", frames=8)
    root = _data_set_with_empty_files(tmp_path / "data", real, real_per_class=10, empty=30)
    with pytest.raises(
        UsageError,
        match=r"^\d+ of the \d+ videos of the train split cannot be opened \(more than 10%\), e\.g\. .*empty\d+\.mp4, "
        r".*empty",
    ):
        VideoDataModule(root, frames=4, size=32)
