"""Step runners per Keras backend (the interface is `base.StepRunner`).

- `base.py`: `StepRunner`, and `ModelMetricSteps` (averages kept in the
  model's metric objects, as `model.fit` keeps them);
- `jax_steps.py`: `JaxSteps`, the training state kept outside the model
  between steps and written back wherever someone may look at the model;
- `torch_steps.py`: `TorchSteps`, Keras's train function called directly.

TensorFlow's `CompiledSteps` and the any-backend `BatchSteps` are in
`nbtrain.engine.steps`, whose `make_steps` picks the runner.
"""
