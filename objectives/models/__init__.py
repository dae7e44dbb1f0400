"""Models: model functions (the built-in MLP, or the user's own), and saving and loading a trained network.

- `_mlp`: the multi-layer perceptron (the seed's 784-512-512-10 by default), itself a model function;
- `_function`: naming, importing and checking a user's model function (``--model``);
- `_saved`: a state_dict and a JSON file beside it, loaded with ``weights_only=True``.

The configurations (`ModelConfig`, `ModelSpec`) import no torch; building a model does.
"""

from objectives.models._function import (
    ModelSpec,
    as_spec,
    build_model,
    check_model,
    check_signature,
    parameters_of,
    resolve,
)
from objectives.models._mlp import ACTIVATIONS, MLP, ModelConfig, build_mlp, count_parameters, mlp

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ModelConfig",
    "ModelSpec",
    "as_spec",
    "build_mlp",
    "build_model",
    "check_model",
    "check_signature",
    "count_parameters",
    "load_model",
    "metrics_path",
    "mlp",
    "parameters_of",
    "resolve",
    "save_model",
]


def __getattr__(name: str):
    # Saving and loading need torch: imported on first use, so a configuration alone stays light.
    if name in ("load_model", "metrics_path", "save_model"):
        from objectives.models import _saved

        return getattr(_saved, name)
    raise AttributeError(f"module 'objectives.models' has no attribute {name!r}")
