"""Using trained video classifiers, without Lightning: reading checkpoints, video-level evaluation,
prediction on whole videos and sliding windows, and export to ONNX / torch.export.

Typical use::

    from cbam3d.inference import evaluate_checkpoint, load_checkpoint, predict_files

    model, info = load_checkpoint("runs/demo/checkpoints/last.ckpt")     # eval mode, info["class_names"]
    [prediction] = predict_files(["clip.mp4"], "runs/demo/checkpoints/last.ckpt", topk=3)
    prediction.top                                                        # [("clap", 0.83), ...]
"""

from .checkpoint import ClipSpec, ModelSpec, load_checkpoint
from .evaluate import evaluate_checkpoint
from .plots import plot_confusion_matrix
from .predict import Prediction, predict_files
from .scoring import classification_report, video_scores

__all__ = [
    "ClipSpec",
    "ModelSpec",
    "Prediction",
    "classification_report",
    "evaluate_checkpoint",
    "load_checkpoint",
    "plot_confusion_matrix",
    "predict_files",
    "video_scores",
]
