"""A convolution's prox operator computes the literal pieces of the prox step without forming P.

Claim (STYLE.md, "A literal path beside a fast one"): the prox solvers ask a layer for
A = [P(a); 1^T] through ``phi.prox_operator(a)``: its Gram matrix A A^T (the exact solve, Eq. 44),
V -> V A and R -> R A^T (the right-hand side and CG's operator H, Eq. 14). The default operator
(transfer.PatchOperator) holds the literal im2col matrix P; Conv2d's (conv.ConvPatchOperator)
computes the same three maps block by block, never forming P. Both agree to rounding, for one-row
blocks, one block and padding beyond the kernel's reach; so the ProxProp update of a CNN, exact
and CG, is the one the literal P gives, to rounding. For arrays, the solvers wrap P in the default
operator and give bit for bit what they give for the operator itself.

Tolerances: the blocked and the whole products add the same terms in another order, so they agree
to float64 rounding of the sums (1e-12 relative to the sum of absolute terms). The updates pass
through a solve with the matrix H = A A^T + I/tau_theta (or CG's steps with it), which can amplify
that rounding by its condition number cond(H) <= 1 + tau_theta ||A||^2: 1e-12 cond(H) relative.
"""
import numpy as np
import pytest
from helpers import CONV_SHAPES, assert_close, randn

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host
from penaltyprop.cg import apply_H, cg_rows
from penaltyprop.conv import ConvPatchOperator
from penaltyprop.prox import solve_exact
from penaltyprop.transfer import LinearTransfer, PatchOperator


@pytest.mark.parametrize("c_in,c_out,k,hw,p,N", CONV_SHAPES)
def test_conv_operator_equals_the_literal_one(backend, block_bytes, c_in, c_out, k, hw, p, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(3)
    conv = pp.Conv2d(c_in, c_out, k, in_hw=hw, padding=p)
    a = randn(rng, (c_in, *hw, N), xp)
    fast, literal = conv.prox_operator(a), PatchOperator(conv.patches(a))
    assert isinstance(fast, ConvPatchOperator)
    assert fast.shape == literal.shape == (c_in * k * k, conv.out_shape[1] * conv.out_shape[2] * N)
    P = to_host(literal.patches())
    np.testing.assert_array_equal(to_host(fast.patches()), P)
    # A A^T = [[P P^T, P 1], [1^T P^T, K]]: every entry a sum of K terms of size <= max|P|^2
    A = np.vstack([P, np.ones((1, P.shape[1]))])
    scale = 1 + A.shape[1] * float(np.abs(A).max()) ** 2
    assert_close(literal.gram(), A @ A.T, scale)
    assert_close(fast.gram(), literal.gram(), scale)
    # R A^T and V A
    R = randn(rng, (c_out, P.shape[1]), xp)
    VW, vb = randn(rng, (c_out, P.shape[0]), xp), randn(rng, (c_out,), xp)
    scale = 1 + float(np.abs(A).sum() * max(np.abs(to_host(R)).max(), np.abs(to_host(VW)).max(),
                                            np.abs(to_host(vb)).max()))
    (fW, fb), (lW, lb) = fast.apply_At(R), literal.apply_At(R)
    assert_close(fW, lW, scale)
    assert_close(fb, lb, scale)
    assert_close(fast.apply_A(VW, vb), literal.apply_A(VW, vb), scale)
    assert_close(literal.apply_A(VW, vb), np.hstack([to_host(VW), to_host(vb)[:, None]]) @ A, scale)


def test_conv_operator_keeps_float32(backend, block_bytes):
    xp = get_backend(backend)
    conv = pp.Conv2d(2, 3, 3, in_hw=(5, 6), padding=1)
    a = to_device(np.random.default_rng(0).random((2, 5, 6, 3)), xp, dtype="float32")
    A = conv.prox_operator(a)
    R = xp.ones((3, A.shape[1]), dtype=xp.float32)
    assert A.gram().dtype == np.float32
    assert all(x.dtype == np.float32 for x in A.apply_At(R))
    assert A.apply_A(*A.apply_At(R)).dtype == np.float32


def test_dense_layer_operator_holds_its_input(backend):
    xp = get_backend(backend)
    a = randn(np.random.default_rng(1), (5, 4), xp)
    A = pp.Linear(5, 2).prox_operator(a)
    assert type(A) is PatchOperator and A.patches() is a and A.shape == (5, 4)


@pytest.mark.parametrize("system", ["primal", "batch"])
def test_solvers_take_an_array_or_its_operator_alike(backend, system):
    xp = get_backend(backend)
    rng = np.random.default_rng(2)
    P, R = randn(rng, (6, 9), xp), randn(rng, (3, 9), xp)
    for got, expected in zip(solve_exact(PatchOperator(P), R, 0.3, system), solve_exact(P, R, 0.3, system)):
        np.testing.assert_array_equal(to_host(got), to_host(expected))
    B = PatchOperator(P).apply_At(R)
    for got, expected in zip(cg_rows(PatchOperator(P), B, 0.3, 3), cg_rows(P, B, 0.3, 3)):
        np.testing.assert_array_equal(to_host(got), to_host(expected))
    for got, expected in zip(apply_H(*B, PatchOperator(P), 0.3), apply_H(*B, P, 0.3)):
        np.testing.assert_array_equal(to_host(got), to_host(expected))


SOLVERS = [dict(solver="exact"), dict(solver="exact", exact_system="batch"),
           dict(solver="cg", cg_iterations=3), dict(solver="cg", cg_iterations=2, cg_space="batch"),
           dict(solver="cg", cg_iterations=3, cg_space="primal"),
           dict(solver="cg", cg_iterations=3, cg_space="parameter"),
           dict(solver="cg", cg_iterations=2, cg_variant="authors"), dict(solver="gradient")]


@pytest.mark.parametrize("options", SOLVERS, ids=lambda o: "-".join(map(str, o.values())))
def test_proxprop_on_a_cnn_gives_the_literal_update(backend, block_bytes, monkeypatch, options):
    xp = get_backend(backend)
    net = pp.cnn(in_shape=(2, 8, 8), channels=(3, 2), kernel_size=3, padding=1, n_classes=3)
    theta = net.init(seed=0, dtype="float64", backend=backend)
    rng = np.random.default_rng(4)
    X, y = to_device(rng.random((2, 8, 8, 5)), xp), to_device(np.array([0, 1, 2, 0, 1]), xp)
    tau, tau_theta = 0.1, 0.05
    fast = pp.proxprop(net, theta, X, y, tau, tau_theta, **options)
    with monkeypatch.context() as m:  # every layer's prox from its literal P, as before
        m.setattr(pp.Conv2d, "prox_operator", LinearTransfer.prox_operator)
        literal = pp.proxprop(net, theta, X, y, tau, tau_theta, **options)
    a, _ = pp.forward(net, theta, X)
    for l, ((fW, fb), (lW, lb)) in enumerate(zip(fast, literal)):
        P = to_host(net.phis[l].patches(a[l])) if l < len(net.phis) - 1 else to_host(a[l])
        cond = 1 + tau_theta * np.linalg.norm(np.vstack([P, np.ones((1, P.shape[1]))]), 2) ** 2
        for f, e in ((fW, lW), (fb, lb)):
            f, e = to_host(f), to_host(e)
            assert np.max(np.abs(f - e)) <= 1e-12 * cond * np.max(np.abs(e))
