"""Propositions 1 and 2, and the prox solvers, hold unchanged for a CNN.

Claims, for a network of Conv2d -> ReLU -> MaxPool2d blocks, Flatten and a final Linear
layer (the structure of Section 5.3):

* Prop. 1: Algorithm 1 with rho = gamma = 1/tau is one gradient step, theta - tau grad J.
* Prop. 2: the exact ProxProp update of every conv layer is -tau M^{-1} grad J (Eq. 13) with
  M = I/tau_theta + (grad phi)(grad phi)^* (Eq. 14). For a convolution, in the row-major
  vec of [W_mat, b] (C_out, C_in k^2 + 1), M = kron(I_{C_out}, A A^T + I/tau_theta) with
  A = [P; 1^T] and P the im2col matrix: one system per output channel.
* The exact prox picks the primal system, of size C_in k^2 + 1, for a conv layer (K = H W N
  columns is larger) and agrees with the batch (K x K) system to rounding; CG run long
  enough reaches the exact solve; 3 CG iterations give a descent direction (Prop. 5).
* The penalty energy E (Eq. 3) at the forward-pass activations equals J.
* No algorithm modifies theta or X.

Every claim is checked on both layouts of Section 5.3's CNN: every conv block pooled (the
paper's text) and the last block unpooled (the authors' released code), through the
``pool_last`` fixture.

Oracles: explicit M (dense, numpy.linalg.solve), the Jacobian of theta -> phi(theta, a)
probed with unit vectors, pp.gradient (itself checked by finite differences in
test_conv_gradient.py). Tolerances: exact identities in float64, 1e-10 relative to the
update (the systems have condition number <= 1 + tau_theta ||A||^2 < 1e4 here).
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host

TAU, TAU_THETA = 0.5, 0.2


@pytest.fixture(params=[True, False], ids=["paper-cnn", "authors-cnn"])
def pool_last(request):
    """The paper's CNN (every block pooled) or the authors' (the last block unpooled)."""
    return request.param


def cnn_problem(backend, in_shape=(2, 8, 8), channels=(3, 2), kernel_size=3, padding=1,
                n_classes=3, N=3, seed=0, pool_last=True):
    """A small CNN (float64), its PyTorch-default parameters and a random batch."""
    xp = get_backend(backend)
    net = pp.cnn(in_shape, channels, kernel_size, padding, n_classes, pool_last=pool_last)
    theta = net.init(seed=seed, backend=backend)
    rng = np.random.default_rng(seed + 1000)
    X = to_device(rng.standard_normal((*in_shape, N)), xp)
    y = to_device(rng.integers(0, n_classes, size=N), xp)
    return net, theta, X, y


def wb(pair):
    """[W_mat, b] as one host (n_out, m+1) matrix."""
    W, b = to_host(pair[0]), to_host(pair[1])
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def explicit_M(phi, a_prev, tau_theta):
    """M_l of Eq. 14 for a conv layer, dense, on the row-major vec of [W_mat, b]."""
    P = to_host(phi.patches(a_prev))  # (m, K)
    A = np.vstack([P, np.ones((1, P.shape[1]))])  # (m+1, K)
    return np.kron(np.eye(phi.n_out), A @ A.T + np.eye(A.shape[0]) / tau_theta)


def max_rel(got, expected):
    return np.max(np.abs(got - expected)) / max(1e-300, np.max(np.abs(expected)))


def test_M_is_block_diagonal_per_output_channel(backend, pool_last):
    """kron(I, AA^T) + I/tau_theta equals J_phi^T J_phi + I/tau_theta, J_phi probed from phi itself."""
    xp = get_backend(backend)
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    a, _ = pp.forward(net, theta, X)
    for l in range(net.n_linear - 1):
        phi = net.phis[l]
        n_out, m = phi.n_out, phi.fan_in
        cols = []
        for j in range(n_out * (m + 1)):  # phi(e_j, a): columns of the Jacobian in theta
            e = np.zeros(n_out * (m + 1))
            e[j] = 1.0
            E = e.reshape(n_out, m + 1)
            th = (to_device(E[:, :m].reshape(phi.weight_shape), xp), to_device(E[:, m], xp))
            cols.append(to_host(phi(th, a[l])).ravel())
        J_phi = np.stack(cols, axis=1)
        M_probe = J_phi.T @ J_phi + np.eye(J_phi.shape[1]) / TAU_THETA
        assert max_rel(explicit_M(phi, a[l], TAU_THETA), M_probe) < 1e-12  # same sums, reordered


def test_prop1_penalty_backprop_is_a_gradient_step(backend, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    for tau in (0.05, 1.0, 3.0):
        new = pp.penalty_backprop(net, theta, X, y, tau)
        g = pp.gradient(net, theta, X, y)
        for l in range(net.n_linear):
            expected = wb(theta[l]) - tau * wb(g[l])
            # Same products in the same order except the backpropagated error's sign/scale: 1e-10.
            assert np.max(np.abs(wb(new[l]) - expected)) <= 1e-10 * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("system", ["auto", "primal", "batch"])
@pytest.mark.parametrize("tau,tau_theta", [(TAU, TAU_THETA), (1.0, 5.0)])
def test_prop2_exact_update_is_minus_tau_Minv_grad(backend, system, tau, tau_theta, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="exact", exact_system=system)
    a, _ = pp.forward(net, theta, X)
    g = pp.gradient(net, theta, X, y)
    for l in range(net.n_linear - 1):  # the conv (prox) layers
        M = explicit_M(net.phis[l], a[l], tau_theta)
        expected = np.linalg.solve(M, -tau * wb(g[l]).ravel()).reshape(wb(g[l]).shape)
        assert max_rel(wb(new[l]) - wb(theta[l]), expected) < 1e-10
    g_last = -tau * wb(g[-1])  # Eq. 12 on the final Linear layer
    assert max_rel(wb(new[-1]) - wb(theta[-1]), g_last) < 1e-12


def test_exact_picks_primal_system_of_size_Cin_k2_plus_1(backend, pool_last):
    net, theta, X, y = cnn_problem(backend, in_shape=(2, 8, 8), channels=(3, 2), N=2,
                                   pool_last=pool_last)
    _, infos = pp.proxprop(net, theta, X, y, TAU, TAU_THETA, solver="exact", return_info=True)
    assert [(i.system, i.size) for i in infos] == [("primal", 2 * 9 + 1), ("primal", 3 * 9 + 1)]


def test_primal_and_batch_systems_agree(backend, pool_last):
    """A tiny case where the batch system is affordable: K = H W N = 4*4*2 = 32 for layer 1."""
    net, theta, X, y = cnn_problem(backend, in_shape=(1, 4, 4), channels=(2, 2), N=2,
                                   pool_last=pool_last)
    p, ip = pp.proxprop(net, theta, X, y, TAU, TAU_THETA, solver="exact", exact_system="primal",
                        return_info=True)
    q, iq = pp.proxprop(net, theta, X, y, TAU, TAU_THETA, solver="exact", exact_system="batch",
                        return_info=True)
    assert [i.size for i in ip] == [1 * 9 + 1, 2 * 9 + 1] and [i.size for i in iq] == [32, 8]
    for l in range(net.n_linear):
        d_p, d_q = wb(p[l]) - wb(theta[l]), wb(q[l]) - wb(theta[l])
        assert max_rel(d_p, d_q) < 1e-11  # two Cholesky solves of well-conditioned systems


def test_cg_reaches_the_exact_solve(backend, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    exact = pp.proxprop(net, theta, X, y, TAU, TAU_THETA, solver="exact")
    cg, infos = pp.proxprop(net, theta, X, y, TAU, TAU_THETA, solver="cg", cg_iterations=500,
                            cg_tol=1e-13, return_info=True)
    for l in range(net.n_linear):
        d_exact = wb(exact[l]) - wb(theta[l])
        # Residual 1e-13 relative, cond(M) < 1e4 -> error well below 1e-8 of the update.
        assert max_rel(wb(cg[l]) - wb(theta[l]), d_exact) < 1e-8
    # one CG per output channel: a residual history with C_out columns per conv layer
    assert [i.residual_norms.shape[1] for i in infos] == [3, 2]
    assert all(i.iterations < 500 for i in infos)


def test_three_cg_iterations_give_a_descent_direction(backend, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last, seed=4)
    d = pp.proxprop_direction(net, theta, X, y, tau_theta=1.0, solver="cg", cg_iterations=3)
    g = pp.gradient(net, theta, X, y)
    for l in range(net.n_linear):
        assert float(np.sum(wb(d[l]) * wb(g[l]))) > 0  # Prop. 5: <M^{-1}-ish g, g> > 0


def test_penalty_energy_at_the_forward_pass_is_J(backend, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    a, z = pp.forward(net, theta, X)
    last = (2 * 2 * 2, 3) if pool_last else (2 * 4 * 4, 3)  # 2 channels of 2x2 (pooled) or 4x4
    assert [ai.shape for ai in a] == [(2, 8, 8, 3), (3, 4, 4, 3), last]
    E = float(pp.penalty_energy(net, theta, a, z, y, rho=2.0, gamma=3.0))
    assert abs(E - float(pp.loss(net, theta, X, y))) <= 1e-14  # penalty terms vanish exactly


@pytest.mark.parametrize("call", [
    lambda net, th, X, y: pp.gradient(net, th, X, y),
    lambda net, th, X, y: pp.penalty_backprop(net, th, X, y, 0.1),
    lambda net, th, X, y: pp.proxprop(net, th, X, y, 0.1, 1.0, solver="exact"),
    lambda net, th, X, y: pp.proxprop(net, th, X, y, 0.1, 1.0, solver="cg", cg_iterations=3),
    lambda net, th, X, y: pp.proxprop_direction(net, th, X, y, 1.0, solver="gradient"),
], ids=["gradient", "penalty_backprop", "proxprop-exact", "proxprop-cg", "direction-gradient"])
def test_inputs_are_not_modified(backend, call, pool_last):
    net, theta, X, y = cnn_problem(backend, pool_last=pool_last)
    theta0 = [(to_host(W).copy(), to_host(b).copy()) for W, b in theta]
    X0, y0 = to_host(X).copy(), to_host(y).copy()
    call(net, theta, X, y)
    for (W, b), (W0, b0) in zip(theta, theta0):
        np.testing.assert_array_equal(to_host(W), W0)
        np.testing.assert_array_equal(to_host(b), b0)
    np.testing.assert_array_equal(to_host(X), X0)
    np.testing.assert_array_equal(to_host(y), y0)
