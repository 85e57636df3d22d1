"""AdamW with a learning rate per layer group: fastai's discriminative learning rates, which Keras 3 lacks.

Keras 3 has one learning rate per optimizer (TF Addons' ``MultiOptimizer``, the Keras 2 answer, is gone), so
phase 2 moved the head and the whole body at one rate, and on small data the rate that moves the head wrecks the
body's early stages. This AdamW scales the learning rate of each variable by a factor given by its path, weight
decay included (decoupled decay moves with the rate, as fastai's does per parameter group). Written on the generic
``update_step`` path, so it runs on TensorFlow, JAX and PyTorch alike (PyTorch's fused AdamW is not used for it).
"""

from __future__ import annotations

from .backbone import keras

ops = keras.ops


@keras.saving.register_keras_serializable(package="imgbench")
class DiscriminativeAdamW(keras.optimizers.Adam):
    """AdamW whose step for a variable is ``learning_rate x lr_scales[variable.path]`` (1 where not named)."""

    def __init__(self, lr_scales: dict[str, float] | None = None, weight_decay: float = 0.004, **kwargs):
        # the decay is applied in update_step at the variable's own rate, not by the base class at the global one
        kwargs.pop("name", None)
        super().__init__(name="discriminative_adamw", **kwargs)
        self.lr_scales = dict(lr_scales or {})
        self.decoupled_weight_decay = weight_decay

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._scales = [float(self.lr_scales.get(variable.path, 1.0)) for variable in var_list]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scales[self._get_variable_index(variable)]
        rate = ops.cast(learning_rate, variable.dtype) * scale
        if self.decoupled_weight_decay:
            self.assign_sub(variable, variable * ops.cast(self.decoupled_weight_decay, variable.dtype) * rate)
        super().update_step(gradient, variable, rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "lr_scales": self.lr_scales, "weight_decay": self.decoupled_weight_decay}
