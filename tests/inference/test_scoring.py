"""Scoring (cbam3d.inference.scoring): a video's score is the mean softmax of its clips, unreadable clips are counted,
and the report gives top-1/top-5, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cbam3d.inference import classification_report, video_scores


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
