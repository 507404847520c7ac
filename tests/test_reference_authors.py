r"""penaltyprop computes what the authors' PyTorch code (tfrerix/proxprop) computes.

Claim: on the three reference MLPs of ``tests/data/authors-reference.npz`` (one plain SGD
step of that code, float64; see ``tests/data/README.md``), penaltyprop reproduces every
output of that code:

* ``gradient`` mode is Algorithm 1 (:func:`pp.penalty_backprop`),
* ``prox_exact`` is Algorithm 2 with the exact prox (:func:`pp.proxprop`, no option at all),
* ``prox_cg1/3/5`` is Algorithm 2 with ``solver="cg", cg_variant="authors"``: CG with
  (i) the search direction aliased to the residual, (ii) 1e-6 in the denominators of alpha
  and beta, (iii) an early stop on max_i ||r_i||^2 < 1e-4 mean_i ||r_0,i||^2,
  (iv) the prox solved with the internal step tau = 1 and scaled by tau afterwards.

Textbook CG (the default) is a different algorithm from k = 2 on; for k = 1 it differs from
the variant only by the epsilon's factor g H g / (g H g + 1e-6) per row.

Tolerances: the reference was computed by the same arithmetic in float64 (in another order),
so agreement is to rounding, ~1e-15 measured; 1e-10 leaves room for other BLAS/GPU orders.
"""
import json
import pathlib

import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.authors_cg import AUTHORS_CG_EPS, prox_cg_authors, prox_cg_authors_batch
from penaltyprop.backend import to_device, to_host
from penaltyprop.prox import ProxInfo, choose_cg_space, prox_cg

REFERENCE = pathlib.Path(__file__).parent / "data" / "authors-reference.npz"  # shipped with the tests
CASES = [0, 1, 2]
CG_ITERATIONS = [1, 3, 5]
EXACT = 1e-10  # agreement to rounding in float64 (measured <= 6e-16 on NumPy)


def load_case(c, xp):
    """(net, theta, X (n0, N), y, tau, tau_theta, reference(mode) -> list of (W, b))."""
    d = np.load(REFERENCE)
    meta = json.loads(str(d[f"c{c}_meta"]))
    net = pp.mlp(meta["sizes"], "relu")
    n = len(meta["sizes"]) - 1

    def params(prefix):
        return [(to_device(d[f"{prefix}theta{2 * i}"], xp), to_device(d[f"{prefix}theta{2 * i + 1}"], xp))
                for i in range(n)]

    X = to_device(np.ascontiguousarray(d[f"c{c}_X"].T), xp)  # stored samples first: (N, n0) -> (n0, N)
    y = to_device(d[f"c{c}_y"], xp)
    return net, params(f"c{c}_"), X, y, meta["tau"], meta["tau_theta"], \
        (lambda mode: params(f"c{c}_{mode}_"))


def rows(pair):
    """[W, b] of one layer as a host (n_out, n_in+1) matrix."""
    W, b = to_host(pair[0]), to_host(pair[1])
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def max_abs_diff(p, q):
    return max(float(np.max(np.abs(rows(a) - rows(b)))) for a, b in zip(p, q))


def updates(new, theta):
    """Per layer, theta^{k+1} - theta^k as (n_out, n_in+1) host matrices."""
    return [rows(n) - rows(t) for n, t in zip(new, theta)]


# --------------------------------------------------------------------------- the reference outputs
@pytest.mark.parametrize("c", CASES)
def test_gradient_mode_is_algorithm_1(backend, xp, c):
    net, theta, X, y, tau, _, ref = load_case(c, xp)
    assert max_abs_diff(pp.penalty_backprop(net, theta, X, y, tau), ref("gradient")) <= EXACT


@pytest.mark.parametrize("c", CASES)
def test_prox_exact_is_algorithm_2_with_no_option(backend, xp, c):
    net, theta, X, y, tau, tau_theta, ref = load_case(c, xp)
    assert max_abs_diff(pp.proxprop(net, theta, X, y, tau, tau_theta), ref("prox_exact")) <= EXACT


@pytest.mark.parametrize("space", ["parameter", "batch"])
@pytest.mark.parametrize("k", CG_ITERATIONS)
@pytest.mark.parametrize("c", CASES)
def test_authors_cg_variant_reproduces_prox_cg(backend, xp, c, k, space):
    net, theta, X, y, tau, tau_theta, ref = load_case(c, xp)
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="cg", cg_iterations=k,
                      cg_variant="authors", cg_space=space)
    assert max_abs_diff(new, ref(f"prox_cg{k}")) <= EXACT


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("c", CASES)
def test_textbook_cg_is_a_different_algorithm_from_k_2(backend, xp, c, k):
    """On every prox layer textbook CG's update differs from the reference by > 1e-3 relative
    (measured 6%-240%), so the variant cannot silently become a no-op."""
    net, theta, X, y, tau, tau_theta, ref = load_case(c, xp)
    textbook = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="cg", cg_iterations=k)
    for u_t, u_ref in zip(updates(textbook, theta)[:-1], updates(ref(f"prox_cg{k}"), theta)[:-1]):
        assert np.linalg.norm(u_t - u_ref) > 1e-3 * np.linalg.norm(u_ref)


@pytest.mark.parametrize("c", CASES)
def test_textbook_cg1_is_authors_cg1_up_to_the_epsilon(backend, xp, c):
    r"""One iteration of either is :math:`U_i = -\tau\,\alpha_i g_i` along the row gradient
    :math:`g_i = \nabla_{\theta_l}J` row i, with :math:`\alpha_i = |g_i|^2/(g_i H g_i)` (textbook)
    or :math:`|g_i|^2/(g_i H g_i + 10^{-6})` (the variant, on the unscaled gradient). So
    row by row :math:`U^{a}_i = U^{t}_i \cdot g_iHg_i/(g_iHg_i + 10^{-6})`, where
    :math:`g_iHg_i = -\tau|g_i|^4/\langle U^t_i, g_i\rangle` is read off the textbook update.
    This is an identity: tolerance 1e-10 relative to the update (rounding only). The
    epsilon's own effect is far larger than that here (up to 9.9% on a row)."""
    net, theta, X, y, tau, tau_theta, _ = load_case(c, xp)
    g = [rows(gl) for gl in pp.gradient(net, theta, X, y)]
    kw = {"solver": "cg", "cg_iterations": 1}
    u_t = updates(pp.proxprop(net, theta, X, y, tau, tau_theta, **kw), theta)
    u_a = updates(pp.proxprop(net, theta, X, y, tau, tau_theta, cg_variant="authors", **kw), theta)
    largest_effect = 0.0
    for l in range(len(theta) - 1):  # the prox layers
        gg = np.sum(g[l] ** 2, axis=1)
        live = gg > 0  # a dead unit has g_i = 0 and no update in either
        gHg = -tau * gg[live] ** 2 / np.sum(u_t[l][live] * g[l][live], axis=1)
        predicted = u_t[l][live] * (gHg / (gHg + AUTHORS_CG_EPS))[:, None]
        assert np.max(np.abs(u_a[l][live] - predicted)) <= EXACT * np.max(np.abs(u_t[l]))
        assert np.all(u_a[l][~live] == 0)
        largest_effect = max(largest_effect, float(np.max(AUTHORS_CG_EPS / (gHg + AUTHORS_CG_EPS))))
    assert largest_effect > 0  # the variant is not textbook CG even at k = 1


@pytest.mark.parametrize("c", CASES)
def test_authors_variant_solves_at_tau_1_and_scales_by_tau(backend, xp, c):
    """(iv): the variant's Algorithm 2 update is -tau times its ProxProp direction, which is
    computed at tau = 1 (SGD on the direction reproduces Algorithm 2, DESIGN.md decision 2),
    although the 1e-6 makes the solve itself depend on the scale. Rounding only: 1e-10."""
    net, theta, X, y, tau, tau_theta, _ = load_case(c, xp)
    kw = {"solver": "cg", "cg_iterations": 3, "cg_variant": "authors"}
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, **kw)
    direction = pp.proxprop_direction(net, theta, X, y, tau_theta, **kw)
    for u, d in zip(updates(new, theta), direction):
        assert np.max(np.abs(u + tau * rows(d))) <= EXACT * np.max(np.abs(u))


# --------------------------------------------------------------------------- the four behaviours
def random_rows(xp, seed, tau_theta=1.0, m=4, K=12, n_out=5, scales=None):
    """P (m, K), a gradient (gW (n_out, m), gb (n_out,)), its host rows G (n_out, m+1) and
    the dense H = A A^T + I/tau_theta, (m+1, m+1), with A = [P; 1^T]."""
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((m, K))
    G = rng.standard_normal((n_out, m + 1))
    if scales is not None:
        G *= np.asarray(scales)[:, None]
    A = np.vstack([P, np.ones((1, K))])
    H = A @ A.T + np.eye(m + 1) / tau_theta
    return to_device(P, xp), (to_device(G[:, :m], xp), to_device(G[:, m], xp)), G, H


@pytest.mark.parametrize("tau_theta", [0.05, 1.0, 10.0])
def test_aliasing_makes_the_second_direction_1_plus_beta_times_r1(backend, xp, tau_theta):
    r"""(i) + (ii) for k = 2, written out with the dense H of each row:
    :math:`\alpha_1 = |r_0|^2/(r_0Hr_0 + \epsilon)`, :math:`r_1 = r_0 - \alpha_1 Hr_0`,
    :math:`\beta_1 = |r_1|^2/(|r_0|^2 + \epsilon)`, :math:`p_1 = (1+\beta_1)r_1`,
    :math:`\alpha_2 = |r_1|^2/(p_1Hp_1 + \epsilon)`, :math:`D_2 = \alpha_1 r_0 + \alpha_2 p_1`.
    Tolerance: two CG steps in float64 on a well-conditioned 5x5 system, rounding ~1e-15."""
    P, grad, G, H = random_rows(xp, seed=3, tau_theta=tau_theta, scales=[1, 1e-3, 1, 10, 0.1])
    eps = AUTHORS_CG_EPS
    expected = []
    for r0 in -G:
        a1 = r0 @ r0 / (r0 @ H @ r0 + eps)
        r1 = r0 - a1 * H @ r0
        p1 = (1 + r1 @ r1 / (r0 @ r0 + eps)) * r1
        a2 = r1 @ r1 / (p1 @ H @ p1 + eps)
        expected.append(a1 * r0 + a2 * p1)
    DW, db = prox_cg_authors(P, grad, tau_theta, 2)
    got = rows((DW, db))
    assert np.max(np.abs(got - np.array(expected))) <= 1e-12 * np.max(np.abs(expected))
    textbook = rows(prox_cg(P, grad, tau_theta, 2))
    assert np.max(np.abs(textbook - got)) > 1e-3 * np.max(np.abs(got))


def test_early_stop_on_the_largest_row_residual_against_the_mean_initial_one(backend, xp):
    r"""(iii): the variant stops after the first iteration j with
    :math:`\max_i|r_{j,i}|^2 < 10^{-4}\,\mathrm{mean}_i|r_{0,i}|^2` (true residuals
    :math:`r_j = -g - D_jH` from the dense H). Rows of very different scale make this
    rule differ from a per-row one: the row of scale 1e-5 has g H g << 1e-6, so the epsilon
    all but freezes it (its residual stays ~96% of its initial one) and only the max-vs-mean
    rule lets the loop stop. Tolerance 1e-12: the same iterates, rounding only."""
    tau_theta = 1.0
    P, grad, G, H = random_rows(xp, seed=5, tau_theta=tau_theta, scales=[10, 1, 0.1, 1e-5, 3])
    r0 = np.sum(G ** 2, axis=1)
    limit = 200
    stop = None
    for j in range(1, limit):
        D = rows(prox_cg_authors(P, grad, tau_theta, j))
        r = -G - D @ H
        if np.max(np.sum(r ** 2, axis=1)) < 1e-4 * np.mean(r0):
            stop, D_stop = j, D
            break
    assert stop is not None and stop >= 2  # the rule is met, and not trivially
    info = ProxInfo("cg")
    D = rows(prox_cg_authors(P, grad, tau_theta, limit, history=True, info=info))
    assert info.iterations == stop
    assert np.max(np.abs(D - D_stop)) <= 1e-12 * np.max(np.abs(D_stop))
    # A per-row rule at the same level (|r_j,i|^2 <= 1e-4 |r_0,i|^2 for every i) is not met
    # yet: the rule is max-vs-mean.
    rr = info.residual_norms ** 2  # (stop + 1, n_out)
    assert not np.all(rr[stop] <= 1e-4 * rr[0])


@pytest.mark.parametrize("scales", [[1, 1, 1, 1, 1], [10, 1, 0.1, 1e-5, 3]])
def test_the_batch_loop_is_the_parameter_loop(backend, xp, scales):
    r""":func:`prox_cg_authors_batch` on :math:`r_0 = SA^\top` makes the iterates of
    :func:`prox_cg_authors` (which reproduces the authors' code above) for every k, including
    the early stop (the second case is the stop test's system: a row of scale 1e-5 that the
    epsilon freezes) and the residual norms. Rows in the span of A's columns, K < m + 1, as
    on the paper's MLP. Tolerance: float64 rounding; residual norms from
    :math:`\sqrt{c\mathcal{K}c^\top}` are accurate to about 1e-8 of the initial norm."""
    rng = np.random.default_rng(11)
    m, K, n_out, tau_theta = 9, 6, 5, 0.5
    P = rng.standard_normal((m, K))
    S = rng.standard_normal((n_out, K)) * np.asarray(scales)[:, None]
    G = -S @ np.vstack([P, np.ones((1, K))]).T  # grad = -S A^T, (n_out, m+1)
    Pd, Sd, grad = to_device(P, xp), to_device(S, xp), (to_device(G[:, :m], xp), to_device(G[:, m], xp))
    for k in [1, 2, 3, 5, 8, 200]:
        info_p, info_b = ProxInfo("cg"), ProxInfo("cg")
        D_p = rows(prox_cg_authors(Pd, grad, tau_theta, k, history=True, info=info_p))
        D_b = rows(prox_cg_authors_batch(Pd, Sd, tau_theta, k, history=True, info=info_b))
        assert np.max(np.abs(D_b - D_p)) <= 1e-10 * np.max(np.abs(D_p))
        assert info_b.iterations == info_p.iterations and info_b.system == "batch"
        norms_p, norms_b = info_p.residual_norms, info_b.residual_norms
        assert np.max(np.abs(norms_b - norms_p)) <= 1e-7 * np.max(norms_p[0])
    assert info_p.iterations < 200  # k = 200 ended by the stop rule (iii), in both loops
    np.testing.assert_array_equal(to_host(Sd), S)  # input not modified


def test_auto_runs_the_authors_variant_in_batch_coordinates_on_the_paper_mlp():
    """The paper's MLP layers at batch 500 (n_out, m, K): batch coordinates are cheaper by a
    hand count (k 4 n m K against K^2 m + k 2 n K^2), so ``auto`` picks them; never primal
    (which textbook CG would pick for the small layer below)."""
    for n_out, m, k in [(4000, 3072, 3), (1000, 4000, 1), (4000, 1000, 5)]:
        assert k * 4 * n_out * m * 500 > 500 * 500 * m + k * 2 * n_out * 500 * 500
        assert choose_cg_space(n_out, m, 500, k, "auto", "authors") == "batch"
    assert choose_cg_space(10, 3, 500, 3, "auto", "textbook") == "primal"
    assert choose_cg_space(10, 3, 500, 3, "auto", "authors") == "parameter"


def test_unknown_variant_is_a_value_error(backend, xp):
    P, grad, _, _ = random_rows(xp, seed=0)
    with pytest.raises(TypeError, match="variant"):  # textbook CG has no variant switch
        prox_cg(P, grad, 1.0, 2, variant="pytorch")
    net, theta, X, y, tau, tau_theta, _ = load_case(0, xp)
    with pytest.raises(ValueError, match="cg_variant"):
        pp.proxprop(net, theta, X, y, tau, tau_theta, solver="cg", cg_iterations=2,
                    cg_variant="pytorch")
