"""Every block update of BCD and ADMM is the minimiser of its block objective: after each update
the block's optimality condition holds at the new value, to the solver's accuracy, and no other
variable moved.

"The objective never increases" (test_family_bcd.py) also holds for a wrong update that still
descends (a skipped block, a block solved with a stale neighbour or a wrong weight); these
conditions do not. Smooth blocks: the gradient of the block objective is zero. The ReLU prox
(z-steps): the case conditions of the entrywise minimum of
f(t) = gamma/2 (a - max(t, 0))^2 + c/2 (t - v)^2: stationary on the open half-line it lies on,
the one-sided derivatives' signs at the kink, and no lower value at the other half-line's
minimiser. The gradients and conditions are written here with NumPy from the block objectives,
without the package's helpers.
"""
import numpy as np
import pytest

from penaltyprop.backend import to_host
from penaltyprop.methods import ADMM, BCD
from tests import family_reference as ref
from tests.helpers import random_problem

# Float64, sizes <= 9, exact solves (Cholesky, closed forms): the conditions hold to rounding
# relative to the magnitudes that cancel in them (measured: at most 1.1e-16 of that bound over
# every block of these tests). 1e-13 leaves a factor 1000 for other BLAS orderings and the
# small solves' conditioning, and still fails a wrong update by orders of magnitude (a wrong
# weight or a stale variable leaves residuals of the terms' own size).
REL = 1e-13
# The cross-entropy output blocks take gradient steps: with output_steps = 60 and curvature
# ratio c/(c + 1/2) >= 2/2.5, the error contracts by (1/(2c + 1))^60 < 1e-28: rounding again.
OUTPUT_STEPS = 60


def host(xs):
    return [None if x is None else to_host(x) for x in xs]


def host_theta(theta):
    return [(to_host(W), to_host(b)) for W, b in theta]


def assert_zero(grad, bound):
    """max |grad| <= REL * max(bound), bound an entrywise bound on the magnitudes that the
    gradient's terms carry (rounding is relative to those, not to the gradient)."""
    scale = float(np.abs(bound).max()) + 1e-300
    assert float(np.abs(grad).max()) <= REL * scale, (float(np.abs(grad).max()), scale)


def lin_mag(W, a, b, z):
    """An entrywise bound on the magnitudes in z - W a - b: |z| + |W| |a| + |b|."""
    return np.abs(z) + np.abs(W) @ np.abs(a) + np.abs(b)


def assert_relu_prox_conditions(t, a, v, gamma, c):
    """t is the entrywise minimiser of gamma/2 (a - max(t, 0))^2 + c/2 (t - v)^2."""
    scale = float(np.abs(np.concatenate([a.ravel(), v.ravel(), t.ravel()])).max()) * (gamma + c)
    tol = REL * scale
    pos, neg, kink = t > 0, t < 0, t == 0
    # open half-lines: the derivative of the piece that holds t vanishes
    assert np.abs((gamma * (t - a) + c * (t - v))[pos]).max(initial=0) <= tol
    assert np.abs(c * (t - v)[neg]).max(initial=0) <= tol
    # at the kink t = 0: right derivative -gamma a - c v >= 0, left derivative -c v <= 0
    assert (-gamma * a - c * v)[kink].min(initial=0) >= -tol
    assert (-c * v)[kink].max(initial=0) <= tol
    # global: each half-line is a convex quadratic, minimised at its clipped stationary point;
    # t is not above either of them
    f = lambda s: gamma / 2 * (a - np.maximum(s, 0)) ** 2 + c / 2 * (s - v) ** 2  # noqa: E731
    best_pos = f(np.maximum((gamma * a + c * v) / (gamma + c), 0))
    best_neg = f(np.minimum(v, 0))
    assert np.all(f(t) <= np.minimum(best_pos, best_neg) + tol * scale)


def assert_only_changed(before, after, changed):
    """Every variable except ``changed`` (("theta"|"a"|"z"|"lam", index)) is bit-identical."""
    for kind in ("theta", "a", "z"):
        for i, (p, q) in enumerate(zip(before[kind], after[kind])):
            if (kind, i) == changed or p is None:
                continue
            pairs = zip(p, q) if kind == "theta" else [(p, q)]
            assert all(np.array_equal(u, v) for u, v in pairs), f"{kind}[{i}] moved"


# --------------------------------------------------------------------------- BCD
def check_bcd_block(block, l, old, new, Y, m, loss):
    """The optimality condition of BCD's block ``block`` at layer l (Zeng et al.'s objective)."""
    rho, gamma, alpha = m.rho, m.gamma, m.alpha
    K = len(new["theta"])
    W = {j: new["theta"][j - 1][0] for j in range(1, K + 1)}
    b = {j: new["theta"][j - 1][1][:, None] for j in range(1, K + 1)}
    a, z, a0, z0 = new["a"], new["z"], old["a"], old["z"]
    if block == "a_out":  # split: a_K = argmin loss(a) + gamma/2||a - z_K||^2 + alpha/2||a - a_K^k||^2
        g_loss = ref.loss_grad(a[K], Y, loss)
        assert_zero(g_loss + gamma * (a[K] - z[K]) + alpha * (a[K] - a0[K]),
                    np.abs(a[K]) + 1 + (gamma + alpha) * (np.abs(a[K]) + np.abs(z[K]) + np.abs(a0[K])))
        assert_only_changed(old, new, ("a", K))
    elif block == "z_out" and m.output == "split":  # gamma/2||a_K - z||^2 + rho/2||z - m||^2
        r = z[K] - W[K] @ a[K - 1] - b[K]
        assert_zero(gamma * (z[K] - a[K]) + rho * r,
                    gamma * (np.abs(z[K]) + np.abs(a[K])) + rho * lin_mag(W[K], a[K - 1], b[K], z[K]))
        assert_only_changed(old, new, ("z", K))
    elif block == "z_out":  # loss(z) + rho/2||z - W_K a_{K-1} - b_K||^2 + alpha/2||z - z_K^k||^2
        g_loss = ref.loss_grad(z[K], Y, loss)
        r = z[K] - W[K] @ a[K - 1] - b[K]
        assert_zero(g_loss + rho * r + alpha * (z[K] - z0[K]),
                    np.abs(z[K]) + 1 + rho * lin_mag(W[K], a[K - 1], b[K], z[K])
                    + alpha * (np.abs(z[K]) + np.abs(z0[K])))
        assert_only_changed(old, new, ("z", K))
    elif block == "theta":  # rho/2||z_l - W a_{l-1} - b||^2 + alpha/2||(W, b) - (W, b)^k||^2, jointly
        r = W[l] @ a[l - 1] + b[l] - z[l]
        W0, b0 = old["theta"][l - 1]
        mag = rho * lin_mag(W[l], a[l - 1], b[l], z[l])
        assert_zero(rho * r @ a[l - 1].T + alpha * (W[l] - W0),
                    mag @ np.abs(a[l - 1]).T + alpha * (np.abs(W[l]) + np.abs(W0)))
        assert_zero(rho * r.sum(axis=1) + alpha * (b[l][:, 0] - b0),
                    mag.sum(axis=1) + alpha * (np.abs(b0) + np.abs(b[l][:, 0])))
        assert_only_changed(old, new, ("theta", l - 1))
    elif block == "a":  # a_l: gamma/2||a - relu(z_l)||^2 + rho/2||z_{l+1} - W_{l+1} a - b_{l+1}||^2
        r = z[l + 1] - W[l + 1] @ a[l] - b[l + 1]
        assert_zero(gamma * (a[l] - ref.relu(z[l])) - rho * W[l + 1].T @ r,
                    gamma * (np.abs(a[l]) + np.abs(z[l]))
                    + rho * np.abs(W[l + 1]).T @ lin_mag(W[l + 1], a[l], b[l + 1], z[l + 1]))
        assert_only_changed(old, new, ("a", l))
    elif block == "z":
        # z_l: gamma/2||a_l - relu(z)||^2 + rho/2||z - W_l a_{l-1} - b_l||^2 + alpha/2||z - z^k||^2
        mean = W[l] @ a[l - 1] + b[l]
        assert_relu_prox_conditions(z[l], a[l], (rho * mean + alpha * z0[l]) / (rho + alpha),
                                    gamma, rho + alpha)
        assert_only_changed(old, new, ("z", l))
    else:
        raise AssertionError(f"unknown block {block!r}")


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
@pytest.mark.parametrize("output", ["merged", "split"])
def test_every_bcd_block_update_is_its_block_minimiser(backend, loss, output):
    net, theta, X, y = random_problem([6, 9, 5, 7, 4], 12, seed=3, backend=backend)
    method = BCD(rho=0.7, gamma=1.3, alpha=2.0, loss=loss, output=output,
                 output_steps=OUTPUT_STEPS)
    Y = np.eye(4)[:, to_host(y)]
    state = method.init_state(net, theta, X, y)
    seen = []
    for _ in range(3):  # from the forward pass, then from states where no constraint holds
        old = {"theta": host_theta(theta), "a": host(state.a), "z": host(state.z)}
        for block, l, th, a, z in method.steps(net, theta, state, X, y):
            new = {"theta": host_theta(th), "a": host(a), "z": host(z)}
            check_bcd_block(block, l, old, new, Y, method, loss)
            seen.append((block, l))
            old = new
        theta, state = method.sweep(net, theta, state, X, y)
    out = [("a_out", 4)] if output == "split" else []
    assert seen[:len(out) + 1 + 7] == out + [("z_out", 4), ("theta", 4), ("a", 3), ("z", 3),
                                             ("theta", 3), ("a", 2), ("z", 2), ("theta", 2)]


# --------------------------------------------------------------------------- ADMM
def check_admm_block(block, l, old, new, lam_old, lam_new, Y, m, ridge, loss):
    """The optimality condition of ADMM's block ``block`` (Taylor et al.'s Algorithm 1)."""
    beta, gamma = m.beta, m.gamma
    K = len(new["theta"])
    W = {j: new["theta"][j - 1][0] for j in range(1, K + 1)}
    b = {j: new["theta"][j - 1][1][:, None] for j in range(1, K + 1)}
    a, z = new["a"], new["z"]
    if block == "theta":  # 1/2||z_l - W a_{l-1} - b||^2 + eps/2||(W, b) - (W, b)^k||^2
        eps = ref.ridge_weight(a[l - 1], ridge)
        r = W[l] @ a[l - 1] + b[l] - z[l]
        W0, b0 = old["theta"][l - 1]
        mag = lin_mag(W[l], a[l - 1], b[l], z[l])
        assert_zero(r @ a[l - 1].T + eps * (W[l] - W0),
                    mag @ np.abs(a[l - 1]).T + eps * (np.abs(W[l]) + np.abs(W0)))
        assert_zero(r.sum(axis=1) + eps * (b[l][:, 0] - b0),
                    mag.sum(axis=1) + eps * (np.abs(b0) + np.abs(b[l][:, 0])))
        assert_only_changed(old, new, ("theta", l - 1))
    elif block == "a":  # gamma/2||a - relu(z_l)||^2 + beta/2||z_{l+1} - W_{l+1} a - b_{l+1}||^2
        r = z[l + 1] - W[l + 1] @ a[l] - b[l + 1]
        assert_zero(gamma * (a[l] - ref.relu(z[l])) - beta * W[l + 1].T @ r,
                    gamma * (np.abs(a[l]) + np.abs(z[l]))
                    + beta * np.abs(W[l + 1]).T @ lin_mag(W[l + 1], a[l], b[l + 1], z[l + 1]))
        assert_only_changed(old, new, ("a", l))
    elif block == "z":  # gamma/2||a_l - relu(z)||^2 + beta/2||z - W_l a_{l-1} - b_l||^2
        assert_relu_prox_conditions(z[l], a[l], W[l] @ a[l - 1] + b[l], gamma, beta)
        assert_only_changed(old, new, ("z", l))
    elif block == "z_out":  # loss(z) + <z, lambda> + beta/2||z - W_K a_{K-1} - b_K||^2
        g_loss = ref.loss_grad(z[K], Y, loss)
        r = z[K] - W[K] @ a[K - 1] - b[K]
        lam = 0.0 if lam_old is None else lam_old
        assert_zero(g_loss + lam + beta * r, np.abs(z[K]) + 1 + np.abs(lam)
                    + beta * lin_mag(W[K], a[K - 1], b[K], z[K]))
        assert_only_changed(old, new, ("z", K))
    elif block == "lambda":  # lambda += beta r, and then lambda = -grad loss(z_K) (KKT)
        r = z[K] - W[K] @ a[K - 1] - b[K]
        lam = 0.0 if lam_old is None else lam_old
        assert_zero(lam_new - lam - beta * r, np.abs(lam) + beta * lin_mag(W[K], a[K - 1], b[K], z[K]))
        g_loss = ref.loss_grad(z[K], Y, loss)
        assert_zero(lam_new + g_loss, np.abs(lam_new) + np.abs(z[K]) + 1)
        assert_only_changed(old, new, None)
    else:
        raise AssertionError(f"unknown block {block!r}")


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_every_admm_block_update_is_its_block_minimiser(backend, loss):
    net, theta, X, y = random_problem([6, 9, 5, 4], 12, seed=7, backend=backend)
    ridge = 1e-3  # keeps the least-squares solves' condition number near 1e3 (see REL)
    method = ADMM(beta=0.8, gamma=2.5, warm_start_sweeps=1, loss=loss,
                  output_steps=OUTPUT_STEPS, ridge=ridge)
    Y = np.eye(4)[:, to_host(y)]
    state = method.init_state(net, theta, X, y)
    blocks = []
    for _ in range(4):  # one warm-start sweep (lambda = 0), then three with the multiplier
        old = {"theta": host_theta(theta), "a": host(state.a), "z": host(state.z)}
        lam_old = None if state.lam is None else to_host(state.lam)
        for block, l, th, a, z, lam in method.steps(net, theta, state, X, y):
            new = {"theta": host_theta(th), "a": host(a), "z": host(z)}
            lam_new = None if lam is None else to_host(lam)
            check_admm_block(block, l, old, new, lam_old, lam_new, Y, method, ridge, loss)
            blocks.append(block)
            old, lam_old = new, lam_new
        theta, state = method.sweep(net, theta, state, X, y)
    assert blocks.count("lambda") == 3 and blocks.count("z") == 4 * 2
