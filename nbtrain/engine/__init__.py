"""The training loop: fit_generator / evaluate_generator / predict_generator.
Knows nothing of threads or widgets.

`config.fit_config` checks and adapts a training job's arguments once (a frozen
`FitConfig`); `training.FitLoop` runs it."""

from nbtrain.engine.config import FitConfig, fit_config
from nbtrain.engine.evaluation import evaluate_generator, predict_generator
from nbtrain.engine.training import FitLoop, Interrupt, LoopState, fit_generator

__all__ = ["FitConfig", "FitLoop", "Interrupt", "LoopState", "evaluate_generator", "fit_config",
           "fit_generator", "predict_generator"]
