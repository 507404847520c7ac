"""ProxProp is a first-order oracle (Section 5.3, DESIGN.md decision 2) that optimizers consume.

Claims tested here:
* plain SGD with learning rate tau, fed the ProxProp direction, IS Algorithm 2 (exact and CG);
  fed grad J it is Algorithm 1 (by Proposition 1, one gradient step);
* heavy-ball momentum, Nesterov momentum, Adam and weight decay follow PyTorch's formulas,
  checked against steps written out by hand as scalar formulas;
* updates return new arrays and leave theta, the direction and the state untouched;
* bad settings raise ValueError naming the argument.
"""
import math

import numpy as np
import pytest
from helpers import copy_params, max_abs_diff, random_problem

import penaltyprop as pp
from penaltyprop import optim
from penaltyprop.backend import to_device, to_host

SIZES, N = [6, 5, 8, 4], 9


# --------------------------------------------------------------------------- SGD = the algorithms
@pytest.mark.parametrize("solver,k", [("exact", None), ("cg", 1), ("cg", 3)])
@pytest.mark.parametrize("tau", [0.05, 1.0, 3.0])
def test_plain_sgd_on_the_proxprop_direction_is_algorithm_2(backend, solver, k, tau):
    net, theta, X, y = random_problem(SIZES, N, seed=4, backend=backend)
    d = pp.proxprop_direction(net, theta, X, y, tau_theta=0.3, solver=solver, cg_iterations=k)
    opt = optim.sgd(lr=tau)
    got, _ = opt.update(theta, d, opt.init(theta))
    expected = pp.proxprop(net, theta, X, y, tau, 0.3, solver=solver, cg_iterations=k)
    # The direction is computed with tau = 1 and scaled by tau afterwards; Algorithm 2 scales
    # inside the sweep. Both are linear in tau, so they agree to float64 rounding (~1e-16 of
    # the O(1) parameters, times the few operations between them).
    assert max_abs_diff(got, expected) < 1e-12


@pytest.mark.parametrize("tau", [0.01, 0.5])
def test_plain_sgd_on_the_gradient_is_algorithm_1(backend, tau):
    net, theta, X, y = random_problem(SIZES, N, seed=5, backend=backend)
    opt = optim.sgd(lr=tau)
    got, state = opt.update(theta, pp.gradient(net, theta, X, y), opt.init(theta))
    # Proposition 1: Algorithm 1 with rho = gamma = 1/tau is one gradient step.
    assert max_abs_diff(got, pp.penalty_backprop(net, theta, X, y, tau)) < 1e-12
    assert state.step == 1 and state.slots == {}


# --------------------------------------------------------------------------- hand-written steps
def _scalar_theta(xp, w, b):
    """theta with one 1x1 weight and one bias: every optimizer formula becomes a scalar one."""
    return [(to_device(np.array([[w]]), xp), to_device(np.array([b]), xp))]


def _run(opt, xp, p0, c, steps):
    """Minimise f(p) = c p^2 / 2 (direction c p) for W and b alike; returns the W iterates."""
    theta = _scalar_theta(xp, p0, p0)
    state = opt.init(theta)
    out = []
    for _ in range(steps):
        (W, b), = theta
        theta, state = opt.update(theta, [(c * W, c * b)], state)
        out.append(float(to_host(theta[0][0])[0, 0]))
        assert float(to_host(theta[0][1])[0]) == out[-1]  # b follows the same formula
    return out, state


def test_heavy_ball_momentum_by_hand(xp):
    lr, mu, c, p0 = 0.1, 0.9, 2.0, 1.5
    got, state = _run(optim.sgd(lr, momentum=mu), xp, p0, c, 3)
    b1 = c * p0                     # b_1 = g_1 (b_0 = 0)
    p1 = p0 - lr * b1
    b2 = mu * b1 + c * p1
    p2 = p1 - lr * b2
    b3 = mu * b2 + c * p2
    p3 = p2 - lr * b3
    # Same operations in the same order: equal to the last bit up to one rounding per step.
    assert got == pytest.approx([p1, p2, p3], rel=1e-15, abs=0)
    assert state.step == 3
    assert float(to_host(state.slots["momentum"][0][0])[0, 0]) == pytest.approx(b3, rel=1e-15)


def test_nesterov_momentum_by_hand(xp):
    lr, mu, c, p0 = 0.1, 0.95, 2.0, 1.5
    got, _ = _run(optim.sgd(lr, momentum=mu, nesterov=True), xp, p0, c, 3)
    g1 = c * p0
    b1 = g1                         # b_1 = mu b_0 + g_1, b_0 = 0
    p1 = p0 - lr * (g1 + mu * b1)   # Nesterov: step along g + mu b
    g2 = c * p1
    b2 = mu * b1 + g2
    p2 = p1 - lr * (g2 + mu * b2)
    g3 = c * p2
    b3 = mu * b2 + g3
    p3 = p2 - lr * (g3 + mu * b3)
    assert got == pytest.approx([p1, p2, p3], rel=1e-15, abs=0)
    # and it is not heavy-ball momentum (the test can tell the two apart)
    heavy, _ = _run(optim.sgd(lr, momentum=mu), xp, p0, c, 3)
    assert abs(heavy[0] - got[0]) > 0.1


def test_adam_by_hand(xp):
    lr, b1, b2, eps, c, p0 = 1e-2, 0.9, 0.999, 1e-8, 2.0, 1.5
    got, state = _run(optim.adam(lr, betas=(b1, b2), eps=eps), xp, p0, c, 3)
    p, m, v, expected = p0, 0.0, 0.0, []
    for t in (1, 2, 3):
        g = c * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        expected.append(p)
    # sqrt(v)/sqrt(1-b2^t) in the code vs sqrt(v/(1-b2^t)) here: a few ulps per step.
    assert got == pytest.approx(expected, rel=1e-14, abs=0)
    assert state.step == 3
    # Adam's first step has length lr (up to eps) whatever the scale of the gradient.
    assert abs(got[0] - p0) == pytest.approx(lr, rel=1e-6)


def test_adam_halves_its_rate_every_halve_every_updates(xp):
    # a constant direction: every bias-corrected step m_hat / (sqrt(v_hat) + eps) is 1 up to
    # eps (1e-8 relative), so update t moves p by exactly the rate of update t
    lr = 0.01
    theta = [(xp.zeros((1, 1)), xp.zeros(1))]
    direction = [(xp.ones((1, 1)), xp.ones(1))]
    opt = optim.adam(lr, halve_every=2)
    state, moves, p = opt.init(theta), [], 0.0
    for _ in range(5):
        theta, state = opt.update(theta, direction, state)
        p_new = float(to_host(theta[0][0])[0, 0])
        moves.append(p - p_new)
        p = p_new
    assert moves == pytest.approx([lr, lr, lr / 2, lr / 2, lr / 4], rel=1e-7)
    again = optim.from_config(opt.config)
    assert again.halve_every == 2 and again.config == opt.config


def test_sgd_weight_decay_by_hand(xp):
    lr, wd, mu, c, p0 = 0.1, 0.01, 0.5, 2.0, 1.5
    got, _ = _run(optim.sgd(lr, momentum=mu, weight_decay=wd), xp, p0, c, 2)
    g1 = c * p0 + wd * p0           # coupled L2: g = d + lambda p
    b1 = g1
    p1 = p0 - lr * b1
    g2 = c * p1 + wd * p1
    b2 = mu * b1 + g2
    p2 = p1 - lr * b2
    assert got == pytest.approx([p1, p2], rel=1e-15, abs=0)


def test_weight_decay_alone_shrinks_theta(xp):
    theta = _scalar_theta(xp, 2.0, -4.0)
    zero = [(xp.zeros((1, 1)), xp.zeros(1))]
    opt = optim.sgd(0.5, weight_decay=0.1)
    (W, b), = opt.update(theta, zero, opt.init(theta))[0]
    assert float(to_host(W)[0, 0]) == 2.0 * (1 - 0.05)  # p (1 - lr lambda), exact in binary here
    assert float(to_host(b)[0]) == -4.0 * (1 - 0.05)
    adam = optim.adam(0.1, weight_decay=0.1)
    (W, _), = adam.update(theta, zero, adam.init(theta))[0]
    # Adam's first step with g = lambda p > 0 moves p by lr (up to eps) towards 0.
    assert float(to_host(W)[0, 0]) == pytest.approx(2.0 - 0.1, rel=1e-7)


# --------------------------------------------------------------------------- purity
@pytest.mark.parametrize("make", [lambda: optim.sgd(0.1), lambda: optim.sgd(0.1, 0.9, True, 0.1),
                                  lambda: optim.adam(0.1, weight_decay=0.1)])
def test_update_returns_new_arrays_and_modifies_nothing(backend, make):
    net, theta, X, y = random_problem(SIZES, N, seed=6, backend=backend)
    d = pp.gradient(net, theta, X, y)
    opt = make()
    state = opt.update(theta, d, opt.init(theta))[1]  # a state with non-zero buffers
    before = copy_params(theta), copy_params(d), {k: copy_params(v) for k, v in state.slots.items()}
    new, new_state = opt.update(theta, d, state)
    assert max_abs_diff(theta, before[0]) == 0 and max_abs_diff(d, before[1]) == 0
    for k, v in state.slots.items():
        assert max_abs_diff(v, before[2][k]) == 0
    assert state.step == 1 and new_state.step == 2
    assert all(W_new is not W for (W_new, _), (W, _) in zip(new, theta))
    assert max_abs_diff(new, theta) > 0


def test_dtype_is_kept(xp):
    theta = [(xp.ones((2, 3), dtype=xp.float32), xp.ones(2, dtype=xp.float32))]
    for opt in (optim.sgd(0.1, 0.9, True, 0.01), optim.adam()):
        new, state = opt.update(theta, theta, opt.init(theta))
        assert new[0][0].dtype == xp.float32 and new[0][1].dtype == xp.float32
        assert all(W.dtype == xp.float32 for slot in state.slots.values() for W, _ in slot)


# --------------------------------------------------------------------------- construction
def test_make_optimizer_and_config_round_trip():
    for opt in (optim.make_optimizer("sgd", 0.1), optim.make_optimizer("nesterov", 0.05),
                optim.make_optimizer("adam", 1e-3, weight_decay=1e-4)):
        again = optim.from_config(opt.config)
        assert again.config == opt.config and type(again) is type(opt)
    assert optim.make_optimizer("nesterov", 0.05).momentum == 0.95  # the paper's default


@pytest.mark.parametrize("build,name", [
    (lambda: optim.sgd(0.0), "lr"),
    (lambda: optim.sgd(-1.0), "lr"),
    (lambda: optim.sgd(float("nan")), "lr"),
    (lambda: optim.sgd("0.1"), "lr"),
    (lambda: optim.sgd(0.1, momentum=-0.1), "momentum"),
    (lambda: optim.sgd(0.1, momentum=1.0), "momentum"),
    (lambda: optim.sgd(0.1, nesterov=True), "nesterov"),
    (lambda: optim.sgd(0.1, momentum=0.9, nesterov=1), "nesterov"),
    (lambda: optim.sgd(0.1, weight_decay=-1e-4), "weight_decay"),
    (lambda: optim.adam(0.0), "lr"),
    (lambda: optim.adam(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: optim.adam(betas=(-0.1, 0.999)), r"betas\[0\]"),
    (lambda: optim.adam(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: optim.adam(betas=(0.9,)), "betas"),
    (lambda: optim.adam(eps=-1e-8), "eps"),
    (lambda: optim.adam(weight_decay=-1.0), "weight_decay"),
    (lambda: optim.adam(halve_every=0), "halve_every"),
    (lambda: optim.adam(halve_every=2.5), "halve_every"),
    (lambda: optim.make_optimizer("rmsprop", 0.1), "optimizer"),
    (lambda: optim.make_optimizer("adam", 0.1, momentum=0.9), "momentum"),
])
def test_bad_settings_raise_value_error_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_direction_must_match_theta(xp):
    theta = [(xp.ones((2, 3)), xp.ones(2)), (xp.ones((4, 2)), xp.ones(4))]
    opt = optim.sgd(0.1)
    with pytest.raises(ValueError, match="direction"):
        opt.update(theta, theta[:1], opt.init(theta))
    with pytest.raises(ValueError, match=r"direction\[1\]"):
        opt.update(theta, [theta[0], (xp.ones((2, 4)), xp.ones(4))], opt.init(theta))
