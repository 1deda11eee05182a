"""Scoring (cbam3d.inference.scoring): a video's score is the mean softmax of its clips, unreadable clips are counted,
and the report gives top-1/top-5, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cbam3d.inference import classification_report, video_scores
from cbam3d.inference.scoring import mean_average_precision, multilabel_report


def test_classification_report_gives_accuracies_per_class_and_the_confusion_matrix():
    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 1, 2])
    report = classification_report(probabilities, labels, ["a", "b", "c"])
    assert report["top1"] == pytest.approx(0.75)
    assert report["top5"] == 1.0
    assert report["per_class"] == {"a": 1.0, "b": 0.5, "c": 1.0}
    assert report["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]


def test_classification_report_rejects_scores_that_do_not_match_the_class_names():
    with pytest.raises(ValueError, match="class names"):
        classification_report(torch.rand(2, 3), torch.tensor([0, 1]), ["a", "b"])


class ClipsOfVideos(torch.utils.data.Dataset):
    """Eval-style items: clip j of video v holds the constant value v * 10 + j; item 4 is unreadable."""

    def __init__(self, videos: int, clips: int) -> None:
        self.videos, self.clips = videos, clips

    def __len__(self):
        return self.videos * self.clips

    def __getitem__(self, index):
        if index == 4:
            return None
        video, clip = divmod(index, self.clips)
        return {"video": torch.full((1, 1, 1, 1), float(video * 10 + clip)), "label": video % 2, "video_index": video}


class ValueAsLogits(nn.Module):
    """Two-class logits (0, x) for an input of constant value x."""

    def forward(self, video):
        x = video.flatten(1)[:, :1]
        return torch.cat([torch.zeros_like(x), x], dim=1)


def test_video_scores_average_the_softmax_of_every_clip_of_a_video_and_count_unreadable_clips():
    scores = video_scores(ValueAsLogits(), ClipsOfVideos(videos=3, clips=2), num_videos=3, batch_size=3)
    assert scores.skipped_clips == 1
    assert scores.video_indices.tolist() == [0, 1, 2] and scores.labels.tolist() == [0, 1, 0]
    expected = [(torch.tensor([0.0, v]).softmax(0)) for v in (0.0, 1.0)]
    torch.testing.assert_close(scores.probabilities[0], (expected[0] + expected[1]) / 2)
    video_2_clip_1 = torch.tensor([0.0, 21.0]).softmax(0)  # clip 0 of video 2 (item 4) was unreadable
    torch.testing.assert_close(scores.probabilities[2], video_2_clip_1)


def test_mean_average_precision_is_scikit_learns_average_precision_averaged_over_classes_with_a_positive():
    average_precision_score = pytest.importorskip("sklearn.metrics").average_precision_score
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(40, 5, generator=generator)
    targets = (torch.rand(40, 5, generator=generator) < 0.3).float()
    targets[:, 3] = 0  # a class without a positive video: left out of the mean, and said so
    report = multilabel_report(scores, targets, ["a", "b", "c", "d", "e"])
    expected = [average_precision_score(targets[:, k].numpy(), scores[:, k].numpy()) for k in (0, 1, 2, 4)]
    assert report["map"] == pytest.approx(sum(expected) / 4)
    assert report["per_class_ap"]["d"] is None and report["classes_without_positives"] == ["d"]
    assert report["per_class_ap"]["e"] == pytest.approx(expected[3])


def test_the_training_modules_val_map_equals_the_evaluation_reports_on_the_same_scores():
    """The clip-level val_map of training (torchmetrics, summed over DDP processes) and evaluate's mAP
    (scikit-learn) are one measure."""
    classification = pytest.importorskip("torchmetrics.classification")
    generator = torch.Generator().manual_seed(1)
    scores = torch.rand(30, 4, generator=generator)
    targets = (torch.rand(30, 4, generator=generator) < 0.4).long()
    targets[:, 0] = 0
    metric = classification.MultilabelAveragePrecision(num_labels=4, average=None)
    metric.update(scores, targets)
    with pytest.warns(UserWarning):  # torchmetrics warns of the class without a positive
        per_class = metric.compute().tolist()
    streamed = mean_average_precision(per_class, (targets.sum(dim=0) > 0).tolist())
    assert streamed == pytest.approx(multilabel_report(scores, targets.float(), list("abcd"))["map"])


def test_multi_label_video_scores_average_sigmoids_and_carry_the_videos_multi_hot_targets():
    dataset = [
        {"video": torch.full((1, 1, 1, 1), 2.0), "label": 0, "video_index": 0, "targets": torch.tensor([1.0, 1.0])},
        {"video": torch.full((1, 1, 1, 1), -2.0), "label": 0, "video_index": 0, "targets": torch.tensor([1.0, 1.0])},
        {"video": torch.full((1, 1, 1, 1), 1.0), "label": 1, "video_index": 1, "targets": torch.tensor([0.0, 1.0])},
    ]
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0], [0.0]]))
    scores = video_scores(model, dataset, num_videos=2, multi_label=True)
    expected_first = (torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(torch.tensor(-2.0))) / 2
    torch.testing.assert_close(scores.probabilities[0], torch.stack([expected_first, torch.tensor(0.5)]))
    torch.testing.assert_close(scores.targets, torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
