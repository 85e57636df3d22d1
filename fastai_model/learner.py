"""The fastai Learner: registry backbone cut before its classifier, fastai's concat-pool head and splitter."""

from __future__ import annotations

import torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import AMPMode, MixedPrecision
from fastai.callback.training import bn_types
from fastai.vision.all import (
    Adam,
    BCEWithLogitsLossFlat,
    BnFreeze,
    F1ScoreMulti,
    RocAucMulti,
    accuracy_multi,
    nn,
    params,
    partial,
    vision_learner,
)
from fastcore.foundation import L
from timm.loss import AsymmetricLossMultiLabel
from torchvision.ops import sigmoid_focal_loss

from benchmarks.errors import BenchmarkError
from benchmarks.models.backbones import Backbone, timm_state_dict
from benchmarks.training.hardware import cpu_has_native_bf16
from benchmarks.training.options import ASL_CLIP, ASL_GAMMA_NEG, ASL_GAMMA_POS, FOCAL_GAMMA, MATCHED

from .callbacks import training_callbacks
from .config import TrainConfig


class MultiLabelLossFlat(BCEWithLogitsLossFlat):
    """BCE, focal or asymmetric loss on logits (``benchmarks.training.options.LOSSES``), the mean over images ×
    labels, with optional label smoothing (targets move ``eps/2`` towards 0.5); fastai's sigmoid activation and
    thresholded decodes come with it, so ``get_preds`` still returns probabilities."""

    def __init__(self, kind: str = "bce", eps: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.eps = kind, eps

    def __call__(self, inp, targ, **kwargs):
        targ = targ.float() * (1 - self.eps) + 0.5 * self.eps if self.eps else targ.float()
        if self.kind == "bce":
            return super().__call__(inp, targ, **kwargs)
        inp, targ = inp.float().reshape(-1), targ.reshape(-1)
        if self.kind == "focal":
            return sigmoid_focal_loss(inp, targ, alpha=-1, gamma=FOCAL_GAMMA, reduction="mean")
        return ASYMMETRIC(inp, targ)


ASYMMETRIC = AsymmetricLossMultiLabel(gamma_neg=ASL_GAMMA_NEG, gamma_pos=ASL_GAMMA_POS, clip=ASL_CLIP, reduction="mean")


def head_kwargs(head_init: str, recipe: str = "idiomatic") -> dict:
    """fastai's ``create_head`` arguments. LP-FT (``probe``) and the matched recipe need the head the probe fits and
    Keras builds — average pooling, dropout, one Linear layer — which is ``create_head`` with no hidden layer, no
    concat pooling and no first BatchNorm; otherwise fastai's default head (concat pooling, BatchNorm, a 512-unit
    hidden layer)."""
    if head_init == "probe" or recipe == "matched":
        return {"concat_pool": False, "lin_ftrs": [], "first_bn": False, "ps": MATCHED.dropout}
    return {}


def optimizer(recipe: str):
    """fastai's Adam (decoupled weight decay, i.e. AdamW); the matched recipe gives it Keras' betas and epsilon."""
    if recipe == "matched":
        return partial(Adam, mom=MATCHED.beta_1, sqr_mom=MATCHED.beta_2, eps=MATCHED.epsilon)
    return Adam


def build_learner(dls, backbone: Backbone, config: TrainConfig, path, *, monitor_auc: bool = True, probe_head=None):
    """``vision_learner`` on the timm architecture, then the registry's ImageNet weights loaded into the body, and,
    for LP-FT, the probe's (weight, bias) into the head's Linear layer."""
    loss = MultiLabelLossFlat(config.loss, config.label_smoothing)
    metrics = [accuracy_multi, F1ScoreMulti(average="macro")]
    if monitor_auc:
        metrics.append(RocAucMulti(average="macro"))
    learn = vision_learner(
        dls,
        backbone.timm_arch,
        pretrained=False,
        normalize=False,
        n_out=len(dls.vocab),
        splitter=stage_splitter(config.unfreeze),
        loss_func=loss,
        metrics=metrics,
        wd=config.wd,
        path=path,
        model_dir="checkpoints",
        train_bn=config.train_bn,
        opt_func=optimizer(config.recipe),
        **head_kwargs(config.head_init, config.recipe),
    )
    load_backbone_weights(learn.model, backbone)
    if probe_head is not None:
        set_linear_head(learn.model, *probe_head)
    if config.head_init == "probe" or config.recipe == "matched":
        learn.add_cb(ImageNetBatchNormStatistics())
    if config.recipe == "matched":
        learn.add_cb(FrozenBatchNormParameters())
    learn.freeze()  # pretrained=False skips vision_learner's own freeze; the weights are pretrained all the same
    if not config.train_bn:
        learn.add_cb(BnFreeze())  # frozen BatchNorm layers also keep their ImageNet running statistics
    for callback in training_callbacks(config, monitor_auc):
        learn.add_cb(callback)
    set_precision(learn, config.precision, config.recipe)
    return learn


def stage_splitter(unfreeze_stages: int):
    """Three parameter groups — early body, late body, head — so discriminative LRs spread over all three
    and ``freeze_to(-2)`` trains only the last ``unfreeze_stages`` of EfficientNet's 7 stages (default split: 4)."""
    split = 7 - (unfreeze_stages or 3)

    def splitter(model):
        body = model[0].model
        early = [body.conv_stem, body.bn1, *body.blocks[:split]]
        late = [*body.blocks[split:], body.conv_head, body.bn2]
        return [params(nn.Sequential(*early)), params(nn.Sequential(*late)), params(model[1])]

    return splitter


def load_backbone_weights(model, backbone: Backbone) -> None:
    """Registry weights into the fastai body (``model[0].model``, timm without its classifier)."""
    state = {k: v for k, v in timm_state_dict(backbone).items() if not k.startswith("classifier.")}
    missing, unexpected = model[0].model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BenchmarkError(
            f"backbone {backbone.name}: weights do not fit the body (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )


class ImageNetBatchNormStatistics(Callback):
    """LP-FT keeps every BatchNorm layer on its ImageNet running statistics, unfrozen ones too (their scale and
    shift still train), as the Keras recipe does. The probe's head was fitted on features normalised with those
    statistics; batch statistics of 32 images would shift every feature under it at the first unfrozen step
    (measured on StampScenes quick: train loss 0.16 → 0.45, valid AUC 0.80 → 0.70 in the first unfrozen epoch)."""

    order = BnFreeze.order + 1

    def before_train(self):
        for module in self.model.modules():
            if isinstance(module, bn_types):
                module.eval()


class FrozenBatchNormParameters(Callback):
    """The matched recipe freezes BatchNorm layers whole, as Keras does (a non-trainable layer): their scale and
    shift get no gradient in unfrozen stages either (fastai would train them there)."""

    def before_fit(self):
        for module in self.model.modules():
            if isinstance(module, bn_types):
                for parameter in module.parameters():
                    parameter.requires_grad_(False)


def set_linear_head(model, weight, bias) -> None:
    """The probe's weights into the head's only Linear layer (``head_kwargs('probe')`` made it)."""
    (linear,) = [m for m in model[1].modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight))
        linear.bias.copy_(torch.as_tensor(bias))


def precision_mode(requested: str = "auto", recipe: str = "idiomatic") -> str:
    """``auto``: fp16 on CUDA, bf16 on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32; the matched recipe
    uses fp32 on every CPU (Keras' auto takes bf16 only with AMX)."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "fp16"
    return "bf16" if recipe != "matched" and cpu_has_native_bf16() else "fp32"


class DeviceMixedPrecision(MixedPrecision):
    """fastai's ``MixedPrecision`` with autocast on the data's device: fastai 2.8 always autocasts for
    'cuda', which on a CPU silently trains in fp32 (and pays for a GradScaler)."""

    def before_fit(self):
        device = getattr(self.dls, "device", None) or torch.device("cpu")
        dtype = torch.bfloat16 if self.amp_mode == AMPMode.BF16 else torch.float16
        self.autocast = torch.autocast(device.type, dtype=dtype)
        self.learn.scaler = torch.amp.GradScaler(
            device.type, enabled=dtype == torch.float16, **self.kwargs
        )  # bf16 needs no scaling
        self.scales = L()


def set_precision(learn, requested: str = "auto", recipe: str = "idiomatic") -> None:
    """channels_last always (faster convolutions on CPU and GPU), mixed precision where the hardware has it."""
    mode = precision_mode(requested, recipe)
    learn.to_channelslast(use_amp=False)
    if mode != "fp32":
        learn.add_cb(DeviceMixedPrecision(amp_mode=mode))
    learn.precision = mode
