"""The four transfer modes, written once on timm's model contract (`forward_features`,
`forward_head(x, pre_logits=True)`, `reset_classifier`, `get_classifier`), so no code here branches on family.

- `features`: frozen backbone; `extract_features` gives pooled pre-logit vectors; a scikit-learn head is fit
  on them (`make_head`: standardised logistic regression by default, linear SVM, kNN with k=11).
- `linear_probe`: frozen backbone (batch-norm statistics frozen too), a fresh torch linear head is trained.
- `finetune`: every parameter trains; the backbone may take a lower learning rate (`param_groups`).
- `scratch`: random initialisation, then trained exactly like `finetune`.

Training loops live in the benchmark harness; this module only prepares models and heads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from zoo._precision import autocast
from zoo.errors import InputShapeError, UnknownNameError

if TYPE_CHECKING:  # scikit-learn is imported where a head is made: at import it pulls in pandas (and scipy)
    from sklearn.base import ClassifierMixin
    from sklearn.pipeline import Pipeline


class TransferMode(str, Enum):
    FEATURES = "features"
    LINEAR_PROBE = "linear_probe"
    FINETUNE = "finetune"
    SCRATCH = "scratch"

    @property
    def pretrained(self) -> bool:
        """Whether the mode starts from pretrained weights."""
        return self is not TransferMode.SCRATCH

    @property
    def trains_backbone(self) -> bool:
        return self in (TransferMode.FINETUNE, TransferMode.SCRATCH)


def _in_chans(model: nn.Module) -> int | None:
    size = getattr(model, "pretrained_cfg", {}).get("input_size")
    return int(size[0]) if size else None


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> torch.Tensor:
    """Pooled pre-logit features `(N, head_hidden_size)` of already normalised images, in eval mode, no grad;
    the backbone runs in `precision` (fp32, or bf16 autocast: see `zoo.autocast`), the features are float32.

    `images` is one `(N, C, H, W)` float tensor (split into batches of `batch_size`) or an iterable of batches.
    """
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    want = _in_chans(model)
    was_training = model.training
    model.eval().to(device)
    out: list[torch.Tensor] = []
    try:
        for x in batches:
            if x.ndim != 4 or not x.is_floating_point():
                raise InputShapeError(f"expected normalised float images (N, C, H, W), got {x.dtype} "
                                      f"{tuple(x.shape)}; see zoo.preprocess_images")
            if want is not None and x.shape[1] != want:
                raise InputShapeError(f"model expects {want}-channel input, got {x.shape[1]} channels; create it "
                                      f"with in_chans={x.shape[1]} or convert the images")
            with autocast(model, device, precision):
                x = x.to(device).contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout
                feats = model.forward_head(model.forward_features(x), pre_logits=True)
            out.append(feats.float().cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.empty(0, getattr(model, "head_hidden_size", getattr(model, "num_features", 0)))
    return torch.cat(out)


def preprocess_images(images: np.ndarray | torch.Tensor, model: nn.Module, size: int | None = None) -> torch.Tensor:
    """uint8 images `(N, H, W)` or `(N, H, W, C)` (MedMNIST's layout) → normalised float `(N, C, size, size)`
    using the mean, std and interpolation recorded on `model` (its weights' preprocessing)."""
    cfg = getattr(model, "pretrained_cfg", {})
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(-1)
    if x.ndim != 4:
        raise InputShapeError(f"expected images (N, H, W) or (N, H, W, C), got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    want = len(cfg.get("mean", ())) or x.shape[1]
    if x.shape[1] != want:
        raise InputShapeError(f"images have {x.shape[1]} channels but the model takes {want}; create the model "
                              f"with in_chans={x.shape[1]}")
    size = size or int(cfg.get("input_size", (0, x.shape[-1]))[-1])
    if x.shape[-1] != size or x.shape[-2] != size:
        mode = cfg.get("interpolation", "bilinear")
        kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
        x = nn.functional.interpolate(x, size=(size, size), mode=mode, **kwargs)
    mean = torch.tensor(cfg.get("mean", (0.5,) * want)).view(1, -1, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5,) * want)).view(1, -1, 1, 1)
    return (x - mean) / std


def _logistic(seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegressionCV

    # L2 strength chosen by 5-fold stratified cross-validation on the training features (log-loss), never on
    # validation or test: with ~1000-2000 features and a few hundred images a fixed C=1 overfits. The folds run in
    # parallel on the process's torch threads (the cell's CPU budget): the same fits, 1.3x faster on 2 cores.
    return LogisticRegressionCV(Cs=np.logspace(-4, 1, 11).tolist(), cv=5, scoring="neg_log_loss", max_iter=5000,
                                l1_ratios=(0.0,), use_legacy_attributes=False, random_state=seed,
                                n_jobs=torch.get_num_threads())


def _linear_svm(seed: int) -> ClassifierMixin:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    # LinearSVC has no predict_proba; AUC needs scores per class, so calibrate it (Platt, 3-fold).
    return CalibratedClassifierCV(LinearSVC(C=0.01, max_iter=20000, random_state=seed), cv=3)


def _knn(seed: int) -> ClassifierMixin:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=11)


HEADS: dict[str, Callable[[int], ClassifierMixin]] = {"logistic": _logistic, "linear_svm": _linear_svm, "knn": _knn}


def make_head(kind: str = "logistic", seed: int = 0) -> Pipeline:
    """A scikit-learn classifier on standardised features (`fit(X, y)`, `predict_proba(X)`)."""
    if kind not in HEADS:
        import difflib

        raise UnknownNameError("feature head", kind, difflib.get_close_matches(kind, list(HEADS)) or list(HEADS),
                               listing="zoo.HEADS")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), HEADS[kind](seed))


def fit_head(head: ClassifierMixin, features: np.ndarray, labels: np.ndarray) -> ClassifierMixin:
    """`head.fit` with single-threaded BLAS. The cross-validated fits are many small solves; multi-threaded
    OpenBLAS spins against torch's OpenMP threads and was 40x slower here (a 546 x 2048 logistic CV: 92 s vs 2.4 s
    on 2 cores with another job running)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return head.fit(features, labels)


def _backbone_and_head(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    params = list(model.parameters())
    return [p for p in params if id(p) not in head_ids], [p for p in params if id(p) in head_ids]


def prepare(model: nn.Module, mode: TransferMode | str, num_classes: int | None = None) -> nn.Module:
    """Set which parameters train for `mode`; with `num_classes`, replace the classifier by a fresh one.

    `features` and `linear_probe` freeze the backbone; `finetune` and `scratch` train everything.
    """
    mode = TransferMode(mode)
    if num_classes is not None and num_classes != getattr(model, "num_classes", None):
        model.reset_classifier(num_classes)
    backbone, head = _backbone_and_head(model)
    for p in backbone:
        p.requires_grad_(mode.trains_backbone)
    for p in head:
        p.requires_grad_(mode is not TransferMode.FEATURES)
    return model


def train_mode(model: nn.Module, mode: TransferMode | str) -> nn.Module:
    """`model.train()`, except that a frozen backbone stays in eval mode (batch-norm statistics and dropout of a
    linear probe must not drift while only the head learns)."""
    mode = TransferMode(mode)
    if mode.trains_backbone:
        return model.train()
    model.eval()
    model.get_classifier().train()
    return model


def param_groups(model: nn.Module, lr: float, backbone_lr_scale: float = 1.0) -> list[dict[str, object]]:
    """Optimizer groups: the classifier at `lr`, the trainable backbone at `lr * backbone_lr_scale`."""
    backbone, head = _backbone_and_head(model)
    groups = [{"params": [p for p in head if p.requires_grad], "lr": lr, "name": "head"}]
    trainable = [p for p in backbone if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "lr": lr * backbone_lr_scale, "name": "backbone"})
    return groups
