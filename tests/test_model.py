import pytest
import torch
from torch import nn

from objectives import ModelConfig, SpaceError, build_mlp, count_parameters


def test_default_is_the_seed_network_without_relu_on_logits():
    model = build_mlp(ModelConfig())
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(784, 512), (512, 512), (512, 10)]
    assert count_parameters(model) == 669_706
    assert isinstance(model[-1], nn.Linear)  # raw logits, not clipped by a ReLU
    logits = build_mlp(ModelConfig())(torch.randn(64, 784))
    assert logits.shape == (64, 10) and (logits < 0).any()


@pytest.mark.parametrize("activation, cls", [("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)])
def test_activation_and_depth(activation, cls):
    model = build_mlp(ModelConfig(hidden=(32, 16, 8), activation=activation), in_features=20, num_classes=3)
    assert sum(isinstance(m, cls) for m in model) == 3
    assert model(torch.randn(2, 20)).shape == (2, 3)


def test_bad_model_config():
    with pytest.raises(SpaceError, match="activation is 'gelu', but must be one of relu, sigmoid, tanh"):
        ModelConfig(activation="gelu")
    with pytest.raises(SpaceError, match="hidden is \\[0\\]"):
        ModelConfig(hidden=(0,))
