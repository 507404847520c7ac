"""The convolution's maps are what they claim, and each backward map is the exact adjoint.

Claim (DESIGN.md, decision 5; Eqs. 7, 10, 25-26, 43): Conv2d computes the 2-D
cross-correlation phi(theta, a) = W * a + b, i.e. rows(phi) = W_mat P(a) + b 1^T with P
the im2col matrix; col2im is the adjoint of im2col, <P(a), G> = <a, P^*(G)>; and
``adjoint_theta`` / ``adjoint_a`` are the adjoints of phi in theta and in a. The
parameter-free maps (MaxPool2d, Flatten and their composition with ReLU, the sigma of a
conv block) have a vjp equal to their transposed Jacobian: checked against central
finite differences at points where the map is differentiable (distinct entries), and
ties in a pooling window send the whole gradient to one winner.

Oracles: scipy.signal.correlate (the definition of cross-correlation) and inner-product
identities. Tolerances: adjoint identities are exact up to float64 summation rounding,
a few ulps of the sums involved (1e-12 relative); pooling is piecewise linear, so its
central difference is exact up to rounding of z +- eps dz (1e-8 relative with eps = 1e-6).
"""
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host
from penaltyprop.network import Compose

SHAPES = [  # (c_in, c_out, k, (H, W), padding, N)
    (2, 3, 3, (6, 6), 1, 3),
    (1, 2, 5, (7, 5), 2, 2),
    (3, 2, 2, (4, 5), 0, 4),
    (2, 1, 1, (3, 3), 0, 1),
    (2, 2, 4, (3, 2), 3, 2),  # padding larger than the kernel's reach: zero rows in P
]


def _rand(rng, shape, xp):
    return to_device(rng.standard_normal(shape), xp)


def _inner(u, v):
    return float(np.sum(to_host(u) * to_host(v)))


def _conv_reference(a, W, b, padding):
    """Direct definition, on the host: z[o, :, :, n] = b_o + sum_c correlate(a_pad[c, :, :, n], W[o, c])."""
    a, W, b = to_host(a), to_host(W), to_host(b)
    C_in, H, Wd, N = a.shape
    C_out = W.shape[0]
    a_pad = np.pad(a, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out = []
    for o in range(C_out):
        z_o = np.stack([sum(scipy.signal.correlate(a_pad[c, :, :, n], W[o, c], mode="valid")
                            for c in range(C_in)) for n in range(N)], axis=-1)
        out.append(z_o + b[o])
    return np.stack(out)


@pytest.mark.parametrize("c_in,c_out,k,hw,p,N", SHAPES)
def test_forward_is_cross_correlation(backend, c_in, c_out, k, hw, p, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(1)
    conv = pp.Conv2d(c_in, c_out, k, in_hw=hw, padding=p)
    a = _rand(rng, (c_in, *hw, N), xp)
    W, b = _rand(rng, conv.weight_shape, xp), _rand(rng, (c_out,), xp)
    z = conv((W, b), a)
    assert z.shape == (*conv.out_shape, N)
    # Same sums in another order: rounding only.
    np.testing.assert_allclose(to_host(z), _conv_reference(a, W, b, p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c_in,c_out,k,hw,p,N", SHAPES)
def test_patches_and_adjoint_patches_are_adjoint(backend, c_in, c_out, k, hw, p, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(2)
    conv = pp.Conv2d(c_in, c_out, k, in_hw=hw, padding=p)
    a = _rand(rng, (c_in, *hw, N), xp)
    P = conv.patches(a)
    m, K = c_in * k * k, conv.out_shape[1] * conv.out_shape[2] * N
    assert P.shape == (m, K) and P.flags.c_contiguous
    G = _rand(rng, (m, K), xp)
    lhs, rhs = _inner(P, G), _inner(a, conv.adjoint_patches(G, N))
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(to_host(P)).sum() * np.abs(to_host(G)).max())


@pytest.mark.parametrize("c_in,c_out,k,hw,p,N", SHAPES)
def test_adjoint_theta_and_adjoint_a(backend, c_in, c_out, k, hw, p, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(3)
    conv = pp.Conv2d(c_in, c_out, k, in_hw=hw, padding=p)
    a = _rand(rng, (c_in, *hw, N), xp)
    W, b = _rand(rng, conv.weight_shape, xp), _rand(rng, (c_out,), xp)
    u = _rand(rng, (*conv.out_shape, N), xp)
    # Sum of the absolute values of every product in the identity: the rounding scale.
    scale = _inner(conv((abs(W), abs(b)), abs(a)), abs(u))
    # theta -> phi(theta, a) is linear: <phi((W, b), a), u> = <(W, b), adjoint_theta(a, u)>.
    dW, db = conv.adjoint_theta(a, u)
    assert dW.shape == conv.weight_shape and db.shape == (c_out,)
    assert abs(_inner(conv((W, b), a), u) - (_inner(W, dW) + _inner(b, db))) <= 1e-12 * scale
    # a -> phi((W, 0), a) is linear: <phi((W, 0), a), u> = <a, adjoint_a((W, b), u)> (b plays no part).
    da = conv.adjoint_a((W, b), u)
    assert da.shape == a.shape
    assert abs(_inner(conv((W, 0 * b), a), u) - _inner(a, da)) <= 1e-12 * scale


@settings(max_examples=25, deadline=None)
@given(c_in=st.integers(1, 3), k=st.integers(1, 4), H=st.integers(1, 6), W=st.integers(1, 6),
       p=st.integers(0, 2), N=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_im2col_adjoint_for_all_shapes(backend, c_in, k, H, W, p, N, seed):
    if k > H + 2 * p or k > W + 2 * p:
        return  # no valid output (Conv2d rejects it; see test_conv_errors.py)
    xp = get_backend(backend)
    rng = np.random.default_rng(seed)
    conv = pp.Conv2d(c_in, 1, k, in_hw=(H, W), padding=p)
    a = _rand(rng, (c_in, H, W, N), xp)
    P = conv.patches(a)
    G = _rand(rng, P.shape, xp)
    lhs, rhs = _inner(P, G), _inner(a, conv.adjoint_patches(G, N))
    assert abs(lhs - rhs) <= 1e-12 * (1 + np.abs(to_host(P)).sum() * np.abs(to_host(G)).max())


def test_patch_matrix_entries(backend):
    """P[(c, i, j), (h, w, n)] = a_pad[c, h+i, w+j, n]: rows ordered like W[o].ravel()."""
    xp = get_backend(backend)
    a_host = np.arange(2 * 3 * 4 * 2, dtype=float).reshape(2, 3, 4, 2) + 1
    conv = pp.Conv2d(2, 1, 2, in_hw=(3, 4), padding=1)
    P = to_host(conv.patches(to_device(a_host, xp))).reshape(2, 2, 2, 4, 5, 2)
    a_pad = np.pad(a_host, ((0, 0), (1, 1), (1, 1), (0, 0)))
    for c, i, j, h, w, n in np.ndindex(P.shape):
        assert P[c, i, j, h, w, n] == a_pad[c, h + i, w + j, n]


@pytest.mark.parametrize("p", [0, 1])
def test_patches_of_a_strided_view(backend, p):
    """im2col reads its input through strides: a non-contiguous view gives the same P as a copy."""
    xp = get_backend(backend)
    rng = np.random.default_rng(6)
    big = _rand(rng, (4, 10, 7, 5), xp)
    view = big[::2, 1::2, ::-1, 1:4]  # (2, 5, 7, 3), every stride unusual
    conv = pp.Conv2d(2, 1, 3, in_hw=(5, 7), padding=p)
    np.testing.assert_array_equal(to_host(conv.patches(view)),
                                  to_host(conv.patches(xp.ascontiguousarray(view))))


# --------------------------------------------------------------------------- pooling, flatten
def _distinct(rng, shape):
    """A random array with well-separated entries: no ties, no zeros (no ReLU/max kinks)."""
    n = int(np.prod(shape))
    vals = (rng.permutation(n) - n / 2 + 0.5) * 0.1  # spacing 0.1, none within 0.05 of 0
    return vals.reshape(shape)


@pytest.mark.parametrize("sigma_maps", [
    [pp.MaxPool2d(2)], [pp.MaxPool2d(3)], [pp.Flatten()],
    [pp.ReLU(), pp.MaxPool2d(2)], [pp.ReLU(), pp.MaxPool2d(2), pp.Flatten()],
], ids=repr)
def test_vjp_is_transposed_jacobian(backend, sigma_maps):
    xp = get_backend(backend)
    rng = np.random.default_rng(4)
    sigma = sigma_maps[0] if len(sigma_maps) == 1 else Compose(sigma_maps)
    shape = (3, 6, 6, 2)
    z = to_device(_distinct(rng, shape), xp)
    out = sigma(z)
    assert out.shape == (*sigma.out_shape(shape[:-1]), 2)
    v = _rand(rng, out.shape, xp)
    g = sigma.vjp(z, v)
    assert g.shape == z.shape
    eps = 1e-6  # far below the 0.05 gap to any kink: sigma is linear on [z - eps dz, z + eps dz]
    for _ in range(3):
        dz = _rand(rng, shape, xp)
        fd = (_inner(sigma(z + eps * dz), v) - _inner(sigma(z - eps * dz), v)) / (2 * eps)
        assert abs(fd - _inner(g, dz)) <= 1e-8 * (1 + abs(fd))


def test_pool_forward_and_routing(backend):
    xp = get_backend(backend)
    rng = np.random.default_rng(5)
    z_host = _distinct(rng, (2, 4, 6, 3))
    pool = pp.MaxPool2d(2)
    out = to_host(pool(to_device(z_host, xp)))
    np.testing.assert_array_equal(out, z_host.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4)))
    v = rng.standard_normal(out.shape)
    g = to_host(pool.vjp(to_device(z_host, xp), to_device(v, xp)))
    # Each window passes its v to exactly its argmax, nothing else.
    gw = g.reshape(2, 2, 2, 3, 2, 3)
    zw = z_host.reshape(2, 2, 2, 3, 2, 3)
    np.testing.assert_array_equal(gw.sum(axis=(2, 4)), v)
    np.testing.assert_array_equal((gw != 0).sum(axis=(2, 4)), np.ones(v.shape))
    np.testing.assert_array_equal(gw * (zw == out[:, :, None, :, None, :]), gw)


def test_pool_ties_have_one_winner(backend):
    """Equal maxima in a window: the first in row-major window order gets all of v."""
    xp = get_backend(backend)
    z = np.zeros((1, 4, 4, 2))
    z[0, 2, 3, 1] = z[0, 3, 2, 1] = 5.0  # a tie at offsets (0, 1) and (1, 0) of window (1, 1)
    v = np.arange(1, 9, dtype=float).reshape(1, 2, 2, 2)
    g = to_host(pp.MaxPool2d(2).vjp(to_device(z, xp), to_device(v, xp)))
    expected = np.zeros_like(z)
    for h in range(2):
        for w in range(2):
            expected[0, 2 * h, 2 * w, 0] = v[0, h, w, 0]  # all-zero windows: offset (0, 0)
            expected[0, 2 * h, 2 * w, 1] = v[0, h, w, 1]
    expected[0, 2, 2, 1] = 0.0
    expected[0, 2, 3, 1] = v[0, 1, 1, 1]
    np.testing.assert_array_equal(g, expected)


def test_flatten_order(backend):
    """Flatten stacks (c, h, w) per column, the order Linear(C*H*W, n) expects."""
    xp = get_backend(backend)
    z = np.arange(2 * 3 * 2 * 4, dtype=float).reshape(2, 3, 2, 4)
    f = to_host(pp.Flatten()(to_device(z, xp)))
    for n in range(4):
        np.testing.assert_array_equal(f[:, n], z[..., n].ravel())
