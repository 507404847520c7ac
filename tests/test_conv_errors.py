"""Bad convolutional layers, networks and inputs raise ValueError naming the argument.

Claim: a kernel larger than the padded image, channels or sizes that do not match between
layers or with the input X, sizes that 2x2 pooling cannot halve, and non-integer or
out-of-range layer arguments are rejected up front with a ValueError whose message
names the offending argument, never with an IndexError or a wrong result later.
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device


@pytest.mark.parametrize("kwargs,name", [
    (dict(c_in=0, c_out=2, kernel_size=3, in_hw=(5, 5)), "c_in"),
    (dict(c_in=1, c_out=2.5, kernel_size=3, in_hw=(5, 5)), "c_out"),
    (dict(c_in=1, c_out=2, kernel_size=0, in_hw=(5, 5)), "kernel_size"),
    (dict(c_in=1, c_out=2, kernel_size=6, in_hw=(5, 5)), "kernel_size"),  # 6 > 5
    (dict(c_in=1, c_out=2, kernel_size=8, in_hw=(5, 9), padding=1), "kernel_size"),  # 8 > 5 + 2
    (dict(c_in=1, c_out=2, kernel_size=3, in_hw=(5, 5), padding=-1), "padding"),
    (dict(c_in=1, c_out=2, kernel_size=3, in_hw=5), "in_hw"),
    (dict(c_in=1, c_out=2, kernel_size=3, in_hw=(5, 0)), "in_hw"),
])
def test_conv2d_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        pp.Conv2d(**kwargs)


def test_kernel_as_large_as_the_padded_image_is_fine():
    conv = pp.Conv2d(1, 2, 7, in_hw=(5, 5), padding=1)
    assert conv.out_shape == (2, 1, 1)


@pytest.mark.parametrize("kwargs,name", [
    (dict(in_shape=(3, 30, 30)), "in_shape"),  # 30 -> 15 after the first pool: odd
    (dict(in_shape=(3, 32)), "in_shape"),
    (dict(in_shape=(3, 8, 8), channels=(4,), kernel_size=11, padding=1), "kernel_size"),
    (dict(channels=()), "channels"),
    (dict(channels=4), "channels"),
    (dict(channels=(4, 0)), "channels"),
    (dict(padding=-2), "padding"),
    (dict(n_classes=0), "n_classes"),
    (dict(activation="softplus"), "activation"),
])
def test_cnn_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        pp.cnn(**kwargs)


def test_channel_mismatch_between_layers():
    layers = [pp.Conv2d(1, 3, 3, in_hw=(4, 4), padding=1), pp.ReLU(),
              pp.Conv2d(2, 2, 3, in_hw=(4, 4), padding=1), pp.ReLU(), pp.Flatten(), pp.Linear(32, 2)]
    with pytest.raises(ValueError, match=r"layer 2 .*expects inputs of shape \(2, 4, 4\)"):
        pp.Network.from_layers(layers)


def test_odd_size_before_pooling_in_a_network():
    layers = [pp.Conv2d(1, 2, 2, in_hw=(4, 4)), pp.ReLU(), pp.MaxPool2d(2),  # 3x3: odd
              pp.Flatten(), pp.Linear(2, 2)]
    with pytest.raises(ValueError, match="kernel_size=2"):
        pp.Network.from_layers(layers)


def test_pooling_arguments_and_odd_arrays(backend):
    xp = get_backend(backend)
    with pytest.raises(ValueError, match="kernel_size"):
        pp.MaxPool2d(0)
    with pytest.raises(ValueError, match="divisible"):
        pp.MaxPool2d(2)(xp.zeros((1, 3, 4, 2)))


def test_input_with_wrong_channels_or_size(backend):
    xp = get_backend(backend)
    net = pp.cnn(in_shape=(2, 8, 8), channels=(3,), kernel_size=3, padding=1, n_classes=2)
    theta = net.init(backend=backend)
    y = to_device(np.array([0, 1]), xp)
    for bad in [(3, 8, 8, 2), (2, 8, 6, 2), (2 * 8 * 8, 2), (2, 8, 8)]:
        with pytest.raises(ValueError, match=r"X must have shape \(2, 8, 8, 'N'\)"):
            pp.gradient(net, theta, xp.zeros(bad), y)
    with pytest.raises(ValueError, match="a must have shape"):
        net.phis[0].patches(xp.zeros((2, 8, 9, 2)))
    with pytest.raises(ValueError, match=r"theta\[0\]\[0\] \(W\)"):
        bad_theta = [(xp.zeros((3, 2, 5, 5)), theta[0][1]), theta[1]]
        pp.proxprop(net, bad_theta, xp.zeros((2, 8, 8, 2)), y, 0.1, 1.0)
