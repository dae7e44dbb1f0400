"""A small learnable stand-in for FashionMNIST, made in memory: the offline demo's data set."""

from __future__ import annotations


def synthetic(n_train: int = 6000, n_test: int = 1000, num_classes: int = 10):
    """A small learnable stand-in for FashionMNIST, the same every time.

    Each class is a smooth random 28x28 pattern mixed into one shared background (so
    classes look alike, as clothes do); samples are their class's image with a random
    contrast and heavy noise. A good configuration learns it in a few epochs and a poor
    one stays far below: enough to tell them apart.
    """
    import torch

    g = torch.Generator().manual_seed(12345)
    coarse = torch.rand(num_classes + 1, 1, 7, 7, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)
    smooth = smooth.squeeze(1)
    protos = (0.7 * smooth[-1:] + 0.3 * smooth[:-1]) * 255.0

    def sample(n: int):
        labels = torch.randint(0, num_classes, (n,), generator=g)
        images = protos[labels] * (0.6 + 0.4 * torch.rand(n, 1, 1, generator=g))
        images = images + 90.0 * torch.randn(n, 28, 28, generator=g)
        return images.clamp_(0, 255).to(torch.uint8).reshape(n, -1), labels

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    classes = tuple(f"class {i}" for i in range(num_classes))
    return train_x, train_y, test_x, test_y, classes
