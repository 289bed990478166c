"""The training loop: fit_generator / evaluate_generator / predict_generator.
Knows nothing of threads or widgets."""

from nbtrain.engine.evaluation import evaluate_generator, predict_generator
from nbtrain.engine.training import FitLoop, Interrupt, LoopState, fit_generator

__all__ = ["FitLoop", "Interrupt", "LoopState", "evaluate_generator", "fit_generator", "predict_generator"]
