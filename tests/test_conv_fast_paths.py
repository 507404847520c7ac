"""The fast convolution and pooling helpers compute the literal maps they stand for.

Claim (STYLE.md, "A literal path beside a fast one"): Conv2d's forward map, its adjoint in
theta and its adjoint in a, computed block by block without forming the patch matrix
(patches.patch_product, patches.patch_gradient, patches.transposed_correlation), equal the literal
W_mat P(a) + b 1^T, (delta P^T, delta 1) and P^*(W_mat^T delta) (col2im, Conv2d.adjoint_patches)
built from the whole im2col matrix; and the fused ReLU -> MaxPool2d (-> Flatten) sigma equals
the chain of its maps, value and vjp, ties and non-positive windows included.

Tolerances: the blocked and the whole products add the same terms in another order, so they
agree to float64 rounding of the sums (1e-12 relative to the sum of absolute terms); the
fused sigma selects and multiplies by 0/1 only, so it agrees exactly.
"""
import numpy as np
import pytest
from helpers import CONV_SHAPES, assert_close, randn

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host
from penaltyprop.network import Compose
from penaltyprop.pooling import ReLUMaxPool


@pytest.mark.parametrize("c_in,c_out,k,hw,p,N", CONV_SHAPES)
def test_blocked_maps_equal_the_literal_ones(backend, block_bytes, c_in, c_out, k, hw, p, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(7)
    conv = pp.Conv2d(c_in, c_out, k, in_hw=hw, padding=p)
    a = randn(rng, (c_in, *hw, N), xp)
    W, b = randn(rng, conv.weight_shape, xp), randn(rng, (c_out,), xp)
    delta = randn(rng, (*conv.out_shape, N), xp)
    P, Wm, R = conv.patches(a), conv.weight_matrix(W), conv.to_rows(delta)
    scale = 1 + float(np.abs(to_host(P)).sum() * max(np.abs(to_host(W)).max(), np.abs(to_host(R)).max()))
    # forward: W_mat P + b 1^T
    assert_close(conv((W, b), a), conv.from_rows(Wm @ P + b[:, None], N), scale)
    # adjoint in theta: (delta P^T, delta 1)
    dW, db = conv.adjoint_theta(a, delta)
    assert_close(dW, (R @ P.T).reshape(conv.weight_shape), scale)
    assert_close(db, R.sum(axis=1), scale)
    # adjoint in a: col2im of W_mat^T delta
    assert_close(conv.adjoint_a((W, b), delta), conv.adjoint_patches(Wm.T @ R, N), scale)


def test_blocked_forward_keeps_float32(backend, block_bytes):
    xp = get_backend(backend)
    net = pp.cnn(in_shape=(2, 8, 8), channels=(3, 2), kernel_size=3, padding=1, n_classes=3)
    theta = net.init(dtype="float32", backend=backend)
    X = to_device(np.random.default_rng(0).standard_normal((2, 8, 8, 4)), xp, dtype="float32")
    a, z = pp.forward(net, theta, X)
    assert all(arr.dtype == np.float32 for arr in a + z[1:])
    g = pp.gradient(net, theta, X, to_device(np.array([0, 1, 2, 0]), xp))
    assert all(gW.dtype == np.float32 and gb.dtype == np.float32 for gW, gb in g)


@pytest.mark.parametrize("flatten", [False, True])
@pytest.mark.parametrize("k", [2, 3])
def test_fused_relu_pool_equals_the_chain(backend, flatten, k):
    xp = get_backend(backend)
    rng = np.random.default_rng(8)
    maps = [pp.ReLU(), pp.MaxPool2d(k)] + ([pp.Flatten()] if flatten else [])
    sigma = Compose(maps)
    assert isinstance(sigma.fused, ReLUMaxPool)
    # Integers in -2..2: many ties inside windows, windows of zeros and of negatives only.
    z = to_device(rng.integers(-2, 3, size=(3, 2 * k, 3 * k, 5)).astype(float), xp)
    out = sigma(z)
    np.testing.assert_array_equal(to_host(out), to_host(sigma.chain(z)))
    v = randn(rng, out.shape, xp)
    np.testing.assert_array_equal(to_host(sigma.vjp(z, v)), to_host(sigma.chain_vjp(z, v)))


def test_other_chains_are_not_fused():
    assert Compose([pp.Tanh(), pp.MaxPool2d(2)]).fused is None
    assert Compose([pp.MaxPool2d(2), pp.ReLU()]).fused is None
    assert Compose([pp.ReLU(), pp.MaxPool2d(2), pp.Flatten()]).fused.flatten
