"""The family methods compute their sources' updates: over several sweeps (or code steps), the
package agrees with minimal independent implementations written from the sources' equations
(tests/family_reference.py: NumPy only, none of the package's helpers).

* BCD (Zeng et al. 2019): the merged output and the sources' split output (V_N, U_N), squared
  loss and cross-entropy, three sweeps;
* ADMM (Taylor et al. 2016): a warm-start sweep, then three with the multiplier;
* AltMin (Choromanska et al. 2019): several code steps, so that the anchors' gradients are not
  zero after the first, in the package's form and in the source's (means, Nesterov momentum);
  and the codes move from the top down, each starting at its forward value.
"""
import numpy as np
import pytest

from penaltyprop.backend import to_host
from penaltyprop.methods import ADMM, BCD, AltMin
from penaltyprop.methods.altmin import code_steps
from tests import family_reference as ref
from tests.helpers import random_problem

# Float64 chains of small solves (cond <= ~1e4 at these sizes) in two different orders of
# operations: agreement to 6.3e-14 of the variables' size measured over these tests; 1e-11
# leaves a factor 150, while a different update (a skipped block, a stale variable, a wrong
# weight) moves the variables at the 1e-4..1 level within one sweep.
TOL = 1e-11
# The package's cross-entropy output blocks take gradient steps: 60 of them contract the error
# below 1e-28 (factor 1/(2c + 1) per step, c >= 1.6 here); the reference solves by Newton.
OUTPUT_STEPS = 60


def split(theta):
    """theta -> (W, b) lists indexed 1..K on the host (index 0 unused)."""
    return [None] + [to_host(W) for W, _ in theta], [None] + [to_host(b) for _, b in theta]


def assert_agree(got, expected):
    scale = max(float(np.abs(e).max()) for e in expected if e is not None)
    for g, e in zip(got, expected):
        if e is not None:
            assert np.abs(to_host(g) - e).max() <= TOL * scale


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
@pytest.mark.parametrize("output", ["merged", "split"])
def test_bcd_agrees_with_zeng_et_al_over_three_sweeps(backend, loss, output):
    net, theta, X, y = random_problem([6, 9, 5, 7, 4], 12, seed=11, backend=backend)
    rho, gamma, alpha = 0.7, 1.3, 2.0
    method = BCD(rho=rho, gamma=gamma, alpha=alpha, loss=loss, output=output,
                 output_steps=OUTPUT_STEPS)
    state = method.init_state(net, theta, X, y)
    Y = np.eye(4)[:, to_host(y)]
    W, b = split(theta)
    a, z = [to_host(v) for v in state.a], [None] + [to_host(v) for v in state.z[1:]]
    for _ in range(3):
        theta, state = method.sweep(net, theta, state, X, y)
        W, b, a, z = ref.bcd_sweep(W, b, a, z, Y, rho, gamma, alpha, loss, output)
        got_W, got_b = split(theta)
        assert_agree(got_W, W)
        assert_agree(got_b, b)
        assert_agree(state.a, a)
        assert_agree(state.z, z)
    assert np.abs(a[1] - ref.relu(z[1])).max() > 1e-5  # the constraints no longer hold (~3e-4)


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_admm_agrees_with_taylor_et_al_over_four_sweeps(backend, loss):
    net, theta, X, y = random_problem([6, 9, 5, 4], 12, seed=12, backend=backend)
    beta, gamma, ridge = 0.8, 2.5, 1e-3
    method = ADMM(beta=beta, gamma=gamma, warm_start_sweeps=1, loss=loss,
                  output_steps=OUTPUT_STEPS, ridge=ridge)
    state = method.init_state(net, theta, X, y)
    Y = np.eye(4)[:, to_host(y)]
    W, b = split(theta)
    a, z = [to_host(v) for v in state.a], [None] + [to_host(v) for v in state.z[1:]]
    lam = np.zeros((4, 12))
    for sweep in range(4):
        theta, state = method.sweep(net, theta, state, X, y)
        W, b, a, z, lam = ref.admm_sweep(W, b, a, z, lam, Y, beta, gamma, ridge, loss,
                                         update_multiplier=sweep >= 1)
        got_W, got_b = split(theta)
        assert_agree(got_W, W)
        assert_agree(got_b, b)
        assert_agree(state.a, a)
        assert_agree(state.z, z)
        if sweep >= 1:
            assert_agree([state.lam], [lam])
    assert np.abs(lam).max() > 1e-2


ALTMIN_CASES = {  # (package settings, reference settings): several steps, anchors active
    "sum": (dict(mu=0.6, inner_steps=4, inner_lr=0.5),
            dict(mu=0.6, steps=4, lr=0.5)),
    "sum, momentum": (dict(mu=2.0, inner_steps=3, inner_lr=0.2, inner_momentum=0.9),
                      dict(mu=2.0, steps=3, lr=0.2, momentum=0.9)),
    "source": (dict(mu=0.003, inner_steps=5, inner_lr=0.3, inner_momentum=0.9,
                    penalty_scale="mean"),
               dict(mu=0.003, steps=5, lr=0.3, momentum=0.9, scale="mean")),
}


@pytest.mark.parametrize("case", list(ALTMIN_CASES))
def test_altmin_agrees_with_choromanska_et_al_after_several_code_steps(backend, case):
    net, theta, X, y = random_problem([6, 9, 7, 5, 4], 10, seed=13, backend=backend)
    settings, reference = ALTMIN_CASES[case]
    _, d = AltMin(**settings).direction(net, theta, X, y)
    W, b = split(theta)
    Y = np.eye(4)[:, to_host(y)]
    expected = ref.altmin_direction(W, b, to_host(X), Y, **reference)
    scale = max(float(np.abs(g).max()) for pair in expected for g in pair)
    for (dW, db), (eW, eb) in zip(d, expected):
        assert np.abs(to_host(dW) - eW).max() <= TOL * scale
        assert np.abs(to_host(db) - eb).max() <= TOL * scale
    # the anchors were active: the codes ended away from their forward values
    z0, z = ref.altmin_codes(W, b, to_host(X), Y, **reference)
    assert all(np.abs(z[l] - z0[l]).max() > 1e-6 * np.abs(z0[l]).max() for l in (1, 2, 3))


def test_altmin_codes_move_top_down_from_their_forward_values(backend):
    """While code l takes its steps, the codes below are still at their forward values and the
    codes above are final; code l's first step starts at its forward value."""
    net, theta, X, y = random_problem([6, 9, 7, 5, 4], 10, seed=14, backend=backend)
    method = AltMin(mu=0.6, inner_steps=3, inner_lr=0.5)
    W, b = split(theta)
    Y = np.eye(4)[:, to_host(y)]
    z0, z_final = ref.altmin_codes(W, b, to_host(X), Y, mu=0.6, steps=3, lr=0.5)
    import penaltyprop as pp

    _, z_fwd = pp.forward(net, theta, X)
    order = []
    for l, step, z in code_steps(net, theta, z_fwd, y, method.mu, method.inner_steps,
                                 method.step_size):
        order.append((l, step))
        for j in range(1, 4):
            expected = z0[j] if j < l else z_final[j] if j > l else None
            if expected is not None:
                assert np.abs(to_host(z[j]) - expected).max() <= TOL * np.abs(expected).max()
    assert order == [(l, s) for l in (3, 2, 1) for s in (1, 2, 3)]
