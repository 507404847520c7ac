"""Online alternating minimisation (Choromanska et al. 2019): with one code step of size 1/mu
from the forward values and the weight steps at the forward inputs, the direction is exactly
grad J (Proposition 1's argument); with the inner steps off the codes stay and only the last
layer moves; each inner step with a step size below 1/Lipschitz lowers the code's local
objective (the descent lemma).
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import to_host
from penaltyprop.methods import AltMin
from penaltyprop.methods.altmin import code_objective, code_steps
from tests.helpers import copy_params, flat, random_problem

EXACT = 1e-12  # float64 rounding of the same chain-rule products in another order


@pytest.mark.parametrize("mu", [0.3, 1.0, 40.0])
def test_one_code_step_at_forward_inputs_is_backprop(backend, mu):
    net, theta, X, y = random_problem([6, 9, 7, 5, 4], 10, seed=0, backend=backend)
    g = pp.gradient(net, theta, X, y)
    J, d = AltMin(mu=mu, inner_steps=1, inputs="forward").direction(net, theta, X, y)
    assert float(J) == pytest.approx(float(pp.loss(net, theta, X, y)), rel=1e-14)
    assert np.abs(flat(d) - flat(g)).max() <= EXACT * np.abs(flat(g)).max()


def test_with_the_inner_steps_off_only_the_last_layer_moves(backend):
    net, theta, X, y = random_problem([6, 9, 5, 4], 10, seed=1, backend=backend)
    g = pp.gradient(net, theta, X, y)
    _, d = AltMin(inner_steps=0).direction(net, theta, X, y)
    assert np.abs(flat(d[:-1])).max() == 0  # codes at their forward values: no penalty gradient
    assert np.abs(flat(d[-1:]) - flat(g[-1:])).max() <= EXACT * np.abs(flat(g[-1:])).max()


def test_source_inputs_differ_from_backprop_in_the_middle_layers_only():
    net, theta, X, y = random_problem([6, 9, 7, 4], 10, seed=2)
    g = pp.gradient(net, theta, X, y)
    errors = []
    for mu in (1e2, 1e4):
        _, d = AltMin(mu=mu, inner_steps=1).direction(net, theta, X, y)
        errors.append([np.abs(flat([dl]) - flat([gl])).max() for dl, gl in zip(d, g)])
    assert errors[1][0] <= 1e-10  # layer 1: its input is the data, unchanged
    assert errors[1][2] < errors[0][2] / 50  # last layer: O(1/mu), mu grew 100x
    assert errors[1][1] > 0.5 * errors[0][1] > 0  # middle layer: O(1), does not vanish


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_each_inner_step_lowers_the_local_objective(backend, activation):
    net, theta, X, y = random_problem([6, 9, 7, 4], 10, seed=3, activation=activation,
                                      backend=backend)
    mu = 0.5
    # The codes' objectives are smooth here; a bound on their gradients' Lipschitz constant:
    # mu (anchor) + the upper term's curvature. For the loss term, |sigma'| <= 1, |sigma''| <= 1,
    # per-sample logit gradient norm <= sqrt(2), logit Hessian <= 1/2:
    # ||W||^2 / 2 + sqrt(2) ||W||. For the penalty term: mu (||W||^2 + ||W|| max|residual|).
    norms = [float(np.linalg.norm(to_host(W), 2)) for W, _ in theta]
    Lip = mu + max(norms[2] ** 2 / 2 + 2 ** 0.5 * norms[2], mu * (norms[1] ** 2 + norms[1] * 10))
    a0, z0 = pp.forward(net, theta, X)
    f_prev, l_prev, count = None, None, 0
    for l, _, z in code_steps(net, theta, z0, y, mu, 6, 1.0 / Lip):
        z_above = z[l + 1] if l < 2 else None
        f = float(code_objective(net, theta, l, z[l], z_above, z0[l], y, mu))
        if l == l_prev:
            assert f < f_prev  # strictly: the gradient is nonzero at these points
        else:
            f_start = float(code_objective(net, theta, l, z0[l], z_above, z0[l], y, mu))
            assert f < f_start
        f_prev, l_prev, count = f, l, count + 1
        if l == 1:  # the per-sample residual norms stay below the 10 assumed in Lip
            r = to_host(z[2] - net.blocks[1].phi(theta[1], net.blocks[0].sigma(z[1])))
            assert np.linalg.norm(r, axis=0).max() < 10
    assert count == 12


def test_inputs_are_not_modified(backend):
    net, theta, X, y = random_problem([5, 8, 6, 3], 7, seed=4, backend=backend)
    before, X0 = copy_params(theta), to_host(X).copy()
    AltMin().direction(net, theta, X, y)
    assert all(np.array_equal(p, to_host(q)) for (p, _), (q, _) in zip(before, theta))
    assert np.array_equal(X0, to_host(X))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="mu"):
        AltMin(mu=0)
    with pytest.raises(ValueError, match="inner_steps"):
        AltMin(inner_steps=-1)
    with pytest.raises(ValueError, match="inner_steps"):
        AltMin(inner_steps=2.0)
    with pytest.raises(ValueError, match="inner_lr"):
        AltMin(inner_lr=0.0)
    with pytest.raises(ValueError, match="inputs"):
        AltMin(inputs="updated")
    with pytest.raises(ValueError, match="lr"):
        pp.make_method("altmin", lr=0.1)
    with pytest.raises(ValueError, match="inner_momentum"):
        AltMin(inner_momentum=1.0)
    with pytest.raises(ValueError, match="penalty_scale"):
        AltMin(penalty_scale="median")


def test_the_source_preset_holds_the_source_code_settings():
    """run_altmin_sgd.py's defaults: --mu 0.003, --n-iter-codes 5, --lr-codes 0.3 with
    Nesterov momentum 0.9 (its SGD on the codes), mse_loss means, the updated codes as inputs."""
    m = AltMin.source()
    assert (m.mu, m.inner_steps, m.step_size, m.inner_momentum, m.penalty_scale, m.inputs) == \
        (0.003, 5, 0.3, 0.9, "mean", "codes")
    assert AltMin.source(inner_steps=2).inner_steps == 2
    assert AltMin(penalty_scale="mean").step_size == 0.3 and AltMin(mu=4.0).step_size == 0.25


def test_trains_on_digits_with_sgd():
    data = pp.data.load_dataset("digits")
    result = pp.train.train(pp.mlp([64, 32, 10]), data, pp.optim.sgd(0.1),
                            pp.make_method("altmin"), epochs=2, batch_size=100)
    h = result.history
    assert not h["diverged"] and h["train_loss"][-1] < h["train_loss"][0] - 0.1  # 2.33 -> 2.19
