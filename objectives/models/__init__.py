"""Models: the built-in MLP, and saving and loading a trained network.

- `_mlp`: the multi-layer perceptron (the seed's 784-512-512-10 by default);
- `_saved`: a state_dict and a JSON file beside it, loaded with ``weights_only=True``.

The configuration (`ModelConfig`) imports no torch; building a model does.
"""

from objectives.models._mlp import ACTIVATIONS, ModelConfig, build_mlp, count_parameters

__all__ = ["ACTIVATIONS", "ModelConfig", "build_mlp", "count_parameters", "load_model", "metrics_path", "save_model"]


def __getattr__(name: str):
    # Saving and loading need torch: imported on first use, so a configuration alone stays light.
    if name in ("load_model", "metrics_path", "save_model"):
        from objectives.models import _saved

        return getattr(_saved, name)
    raise AttributeError(f"module 'objectives.models' has no attribute {name!r}")
