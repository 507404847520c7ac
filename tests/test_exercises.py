"""The exercise checks accept a right answer and reject the typical mistakes with their hint.

Claim: every check of :mod:`penaltyprop.exercises` (a) says "right" for a correct solution,
written here independently of the package, (b) says "wrong" for at least two typical mistakes
(a transposed product, a missing bias row, a sign, an off-by-one layer index, ...) and names the
mistake in its hint, (c) says "not done" for the placeholder that raises NotImplementedError, and
(d) answers in one or two lines; (e) says "wrong" for an answer that calls the package's own code
for the exercise (which would agree with the check to rounding), and "right" for one that uses
the building blocks the exercises name. The solutions below are what a student writes: plain NumPy.
"""
import numpy as np
import pytest

from penaltyprop import exercises as ex
from penaltyprop.cg import cg_rows
from penaltyprop.exercises import family, proximal, steps
from penaltyprop.exercises.verdict import STRICT_ENV


@pytest.fixture(autouse=True)
def normal_checks(monkeypatch):
    """The checks answer rather than raise, whatever the environment says."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


# --------------------------------------------------------------------------- solutions
def algorithm1(theta, X, y, tau, mistake=None):
    """One sweep of Algorithm 1, two linear layers, ReLU, mean cross-entropy, rho = gamma = 1/tau."""
    (W1, b1), (W2, b2) = theta
    N = X.shape[1]
    z1 = W1 @ X + b1[:, None]
    a1 = np.maximum(z1, 0)
    z2 = W2 @ a1 + b2[:, None]
    p = np.exp(z2 - z2.max(axis=0))
    p /= p.sum(axis=0)
    e = p.copy()
    e[y, np.arange(N)] -= 1
    e = e if mistake == "sum loss" else e / N
    W2_new, b2_new = W2 - tau * e @ a1.T, b2 - tau * e.sum(axis=1)
    a1_half = a1 - tau * W2.T @ e
    mask = 1.0 if mistake == "no relu derivative" else (z1 > 0)
    delta = mask * (a1 - a1_half)  # z1 - z1_half
    inputs = a1 if mistake == "off by one layer" else X
    W1_new = W1 + delta @ inputs.T if mistake == "sign" else W1 - delta @ inputs.T
    b1_new = b1 if mistake == "no bias" else b1 - delta.sum(axis=1)
    if mistake == "transposed":
        W1_new = W1 - X @ delta.T
    return [(W1_new, b1_new), (W2_new, b2_new)]


def prox_primal(W, b, a, z_half, tau_theta, mistake=None):
    m, N = a.shape
    A = a if mistake == "no bias row" else np.vstack([a, np.ones((1, N))])
    Theta = W if mistake == "no bias row" else np.hstack([W, b[:, None]])
    shift = tau_theta if mistake == "tau" else 1 / tau_theta
    rhs = z_half @ A.T + (0 if mistake == "no prox term" else Theta / tau_theta)
    T = np.linalg.solve(A @ A.T + shift * np.eye(len(A)), rhs.T).T
    return (T, b) if mistake == "no bias row" else (T[:, :m], T[:, m])


def prox_batch(W, b, a, z_half, tau_theta, mistake=None):
    m, N = a.shape
    A = np.vstack([a, np.ones((1, N))])
    delta = W @ a + b[:, None] - z_half
    gram = a.T @ a if mistake == "no ones" else A.T @ A
    D = np.linalg.solve(gram + np.eye(N) / tau_theta, delta.T).T @ A.T
    D = D if mistake == "sign" else -D
    return (D[:, :m], D[:, m]) if mistake == "update only" else (W + D[:, :m], b + D[:, m])


def cg_iteration(V, R, P, A, tau_theta, mistake=None):
    HP = P @ A @ A.T
    if mistake != "no identity":
        HP = HP + P / tau_theta
    rr = (R ** 2).sum(axis=1, keepdims=True)
    alpha = rr.sum() / (P * HP).sum() if mistake == "one alpha" else \
        rr / (P * HP).sum(axis=1, keepdims=True)
    R_new = R - alpha * HP
    beta = (R_new ** 2).sum(axis=1, keepdims=True) / rr
    P_new = (R if mistake == "old residual" else R_new) + beta * P
    return V + alpha * P, R_new, (P_new.T if mistake == "transposed" else P_new)


def lambda_max(X, mistake=None):
    A = X if mistake == "no bias row" else np.vstack([X, np.ones((1, X.shape[1]))])
    v = np.ones(len(A))
    for _ in range(50):
        w = A @ (A.T @ v)
        v = w / np.linalg.norm(w)
    lam = v @ A @ (A.T @ v)
    return np.sqrt(lam) if mistake == "singular value" else lam


def nesterov_step(p, d, buf, lr, momentum, mistake=None):
    b = momentum * buf + ((1 - momentum) * d if mistake == "dampening" else d)
    step = b if mistake == "heavy ball" else d + momentum * b
    return p - lr * step, b


def im2col(a, k, padding, mistake=None):
    C, H, W, N = a.shape
    p = 0 if mistake == "no padding" else padding
    a_pad = np.pad(a, ((0, 0), (p, p), (p, p), (0, 0)))
    H_out, W_out = H + 2 * p - k + 1, W + 2 * p - k + 1
    P = np.stack([np.stack([a_pad[:, i:i + H_out, j:j + W_out] for j in range(k)], axis=1)
                  for i in range(k)], axis=1)  # (C, k, k, H_out, W_out, N)
    if mistake == "flipped":
        P = P[:, ::-1, ::-1]
    if mistake == "batch first":
        P = P.transpose(0, 1, 2, 5, 3, 4)
    return P.reshape(C * k * k, -1)


def col2im(G, a_shape, k, padding, mistake=None):
    C, H, W, N = a_shape
    p = padding
    H_out, W_out = H + 2 * p - k + 1, W + 2 * p - k + 1
    G6 = G.reshape(C, k, k, H_out, W_out, N)
    out = np.zeros((C, H + 2 * p, W + 2 * p, N))
    for i in range(k):
        for j in range(k):
            if mistake == "assign":
                out[:, i:i + H_out, j:j + W_out] = G6[:, i, j]
            else:
                out[:, i:i + H_out, j:j + W_out] += G6[:, i, j]
    return out if mistake == "no crop" else out[:, p:p + H, p:p + W]


def relu_prox(a, v, gamma, c, mistake=None):
    z_pos = np.maximum((gamma * a + c * v) / (gamma + c), 0)
    z_neg = np.minimum(v, 0)
    if mistake == "positive case only":
        return z_pos

    def f(z):
        return gamma / 2 * (a - np.maximum(z, 0)) ** 2 + c / 2 * (z - v) ** 2

    keep = f(z_pos) >= f(z_neg) if mistake == "larger" else f(z_pos) <= f(z_neg)
    return np.where(keep, z_pos, z_neg)


def multiplier_update(lam, z_K, W, b, a, beta, mistake=None):
    r = z_K - (W @ a + (0 if mistake == "no bias" else b[:, None]))
    if mistake == "overwrite":
        return beta * r
    return lam - beta * r if mistake == "sign" else lam + beta * r


SOLUTIONS = {"algorithm1": algorithm1, "lambda_max": lambda_max, "prox_primal": prox_primal,
             "prox_batch": prox_batch, "cg_iteration": cg_iteration,
             "nesterov_step": nesterov_step, "im2col": im2col, "col2im": col2im,
             "relu_prox": relu_prox, "multiplier_update": multiplier_update}

#: (exercise, mistake, words the hint must contain)
MISTAKES = [
    ("algorithm1", "sum loss", "MEAN loss"),
    ("algorithm1", "no relu derivative", "ReLU's derivative"),
    ("algorithm1", "sign", "wrong way"),
    ("algorithm1", "off by one layer", "off by one layer"),
    ("algorithm1", "no bias", "b_1 did not move"),
    ("algorithm1", "transposed", "transposed"),
    ("lambda_max", "no bias row", "bias row"),
    ("lambda_max", "singular value", "singular value"),
    ("prox_primal", "no bias row", "row of ones"),
    ("prox_primal", "tau", "divided by tau_theta"),
    ("prox_primal", "no prox term", "Theta^k / tau_theta"),
    ("prox_batch", "no ones", "1 1^T"),
    ("prox_batch", "sign", "wrong way"),
    ("prox_batch", "update only", "return Theta^k + D"),
    ("cg_iteration", "one alpha", "one per row"),
    ("cg_iteration", "no identity", "I/tau_theta"),
    ("cg_iteration", "old residual", "NEW residual"),
    ("cg_iteration", "transposed", "transposed"),
    ("nesterov_step", "heavy ball", "heavy-ball"),
    ("nesterov_step", "dampening", "(1 - momentum)"),
    ("im2col", "no padding", "pad a first"),
    ("im2col", "flipped", "flipped"),
    ("im2col", "batch first", "(h, w, n)"),
    ("col2im", "assign", "ADD"),
    ("col2im", "no crop", "cut the padding off"),
    ("relu_prox", "positive case only", "z <= 0 is missing"),
    ("relu_prox", "larger", "SMALLER f"),
    ("multiplier_update", "overwrite", "accumulate"),
    ("multiplier_update", "sign", "the sign"),
    ("multiplier_update", "no bias", "bias is missing"),
]


#: the checks of a function; notebook 06's method exercise takes a class and has its own tests
#: (tests/test_exercises_method.py)
FUNCTIONS = [name for name in ex.CHECKS if name != "prox_every_layer"]


def check(name):
    return ex.CHECKS[name]


def test_every_check_has_a_solution_and_two_mistakes_here():
    assert set(SOLUTIONS) == set(FUNCTIONS) == set(ex.CHECKS) - {"prox_every_layer"}
    for name in FUNCTIONS:
        assert sum(m[0] == name for m in MISTAKES) >= 2, name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_right_solution_is_right(name):
    verdict = check(name)(SOLUTIONS[name])
    assert verdict.status == "right", verdict.message
    assert verdict.right and str(verdict).startswith(f"{name}: right.")
    assert verdict.largest_difference < 1e-9  # float64 and exact formulas: rounding only
    assert "\n" not in verdict.message


@pytest.mark.parametrize("name,mistake,words", MISTAKES)
def test_a_typical_mistake_is_wrong_with_its_hint(name, mistake, words):
    def wrong(*args):
        return SOLUTIONS[name](*args, mistake=mistake)

    verdict = check(name)(wrong)
    assert verdict.status == "wrong" and not verdict.right
    assert verdict.message.startswith(f"{name}: wrong.")
    lines = verdict.message.split("\n")
    assert len(lines) == 2 and lines[1].startswith("  Hint: ")
    assert words in lines[1], verdict.message


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_placeholder_is_not_done(name):
    def placeholder(*args):
        raise NotImplementedError

    verdict = check(name)(placeholder)
    assert verdict.status == "not done" and "not done yet" in verdict.message
    assert verdict.largest_difference is None


def scaled(out, factor):
    """The arrays in a returned value (nested lists and tuples), times ``factor``."""
    if isinstance(out, (list, tuple)):
        return type(out)(scaled(x, factor) for x in out)
    return np.asarray(out) * factor


@pytest.mark.parametrize("name", FUNCTIONS)
def test_an_answer_off_by_a_little_is_wrong(name):
    """Right means right to rounding: every output 1e-5 relative off is wrong. (The loosest
    tolerance of a check is lambda_max's 1e-6 relative, for a converged power iteration.)"""
    def near_miss(*args):
        return scaled(SOLUTIONS[name](*args), 1 + 1e-5)

    assert check(name)(near_miss).status == "wrong"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_an_answer_right_on_one_problem_only_is_wrong(name):
    """A check tries several problems (shapes, steps): an answer right on the first call only,
    as one that works for one shape only, is wrong."""
    calls = []

    def first_only(*args):
        calls.append(1)
        return scaled(SOLUTIONS[name](*args), 1 if len(calls) == 1 else 1.5)

    assert check(name)(first_only).status == "wrong"


def test_an_error_in_the_students_code_is_reported_not_raised():
    def broken(theta, X, y, tau):
        return 1 / 0

    verdict = ex.check_algorithm1(broken)
    assert verdict.status == "wrong" and "ZeroDivisionError" in verdict.message


def test_wrong_return_values_are_named():
    assert "should return 2 values" in ex.check_prox_primal(lambda *a: 1.0).message
    assert "NaN or inf" in ex.check_relu_prox(lambda a, v, g, c: a * np.nan).message
    assert "has shape" in ex.check_im2col(lambda a, k, p: np.zeros((2, 2))).message


def test_a_student_that_writes_into_its_inputs_does_not_fool_the_check():
    """The check hands out copies: an in-place update is judged on what it returns, and the
    check's own arrays (the next step starts from them) stay as they were."""
    def in_place(lam, z_K, W, b, a, beta):
        lam += beta * (z_K - W @ a - b[:, None])
        return lam

    def nesterov_in_place(p, d, buf, lr, momentum):
        buf *= momentum
        buf += d
        p -= lr * (d + momentum * buf)
        return p, buf

    def prox_in_place(W, b, a, z_half, tau_theta):
        W_new, b_new = prox_primal(W, b, a, z_half, tau_theta)
        W[...], b[...] = W_new, b_new
        return W, b

    assert ex.check_multiplier_update(in_place).right
    assert ex.check_nesterov_step(nesterov_in_place).right
    assert ex.check_prox_primal(prox_in_place).right


# --------------------------------------------------------------------------- the package's answer
def cheats():
    """For each exercise whose answer the package computes: an answer that calls the package."""
    import penaltyprop as pp
    from penaltyprop.methods import lifted
    from penaltyprop.optim import OptState
    from penaltyprop.prox import prox_exact

    def algorithm1(theta, X, y, tau):
        (W1, _), (W2, _) = theta
        net = pp.mlp([W1.shape[1], W1.shape[0], W2.shape[0]])
        return [(W - tau * gW, b - tau * gb)
                for (W, b), (gW, gb) in zip(theta, pp.gradient(net, theta, X, y))]

    def prox(system):
        def prox_step(W, b, a, z_half, tau_theta):
            DW, db = prox_exact(a, W @ a + b[:, None] - z_half, tau_theta, system=system)
            return W + DW, b + db
        return prox_step

    def cg_iteration(V, R, P, A, tau_theta):  # the check's own reference
        return proximal.cg_reference(V, R, P, A, tau_theta)

    def nesterov_step(p, d, buf, lr, momentum):
        opt = pp.optim.sgd(lr, momentum=momentum, nesterov=True)
        theta, state = opt.update([(p, np.zeros(1))], [(d, np.zeros(1))],
                                  OptState(1, {"momentum": [(buf, np.zeros(1))]}))
        return theta[0][0], state.slots["momentum"][0][0]

    def conv(a_shape, k, padding):
        C, H, W, _ = a_shape
        return pp.Conv2d(C, 1, k, (H, W), padding=padding)

    return {"algorithm1": algorithm1, "prox_primal": prox("primal"), "prox_batch": prox("batch"),
            "cg_iteration": cg_iteration, "nesterov_step": nesterov_step,
            "im2col": lambda a, k, padding: conv(a.shape, k, padding).patches(a),
            "col2im": lambda G, a_shape, k, padding: conv(a_shape, k, padding).adjoint_patches(
                G, a_shape[3]),
            "relu_prox": lifted.relu_prox}


CHEATS = cheats()


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_an_answer_that_calls_the_package_is_wrong(name):
    """The check compares with the package: returning the package's own computation, which
    agrees with it to rounding, is named, not passed."""
    verdict = check(name)(CHEATS[name])
    assert verdict.status == "wrong", verdict.message
    first, hint = verdict.message.split("\n")
    assert "It calls penaltyprop." in first and "the package's own code" in first
    assert "write it yourself, in NumPy" in hint


def test_the_package_s_building_blocks_are_allowed():
    """phi and its adjoint (penaltyprop.transfer) and the backend are building blocks that the
    exercises name, not answers: a power iteration written with them is right."""
    from penaltyprop.backend import get_backend
    from penaltyprop.transfer import apply_A, apply_At

    def lambda_max(X):
        xp = get_backend("numpy")
        n, _ = X.shape
        v = xp.ones(n + 1)
        for _ in range(50):
            row = apply_A(v[None, :n], v[n:], X)  # v^T A, (1, N): the forward map
            w = xp.concatenate([x.ravel() for x in apply_At(row, X)])  # A A^T v: its adjoint
            v = w / xp.linalg.norm(w)
        row = apply_A(v[None, :n], v[n:], X)
        return float((row * row).sum())  # v^T A A^T v

    assert ex.check_lambda_max(lambda_max).right


def test_the_profile_hook_is_put_back():
    """A check watches the student's calls with a profile hook and restores the one before."""
    import sys

    def mine(frame, event, arg):
        return None

    sys.setprofile(mine)
    try:
        ex.check_relu_prox(relu_prox)
        ex.check_relu_prox(lambda a, v, gamma, c: 1 / 0)
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(None)


def test_a_one_by_one_array_is_a_number():
    """The Rayleigh quotient of a column vector v is a 1 x 1 array: lambda_max accepts it."""
    def column_vector(X):
        A = np.vstack([X, np.ones((1, X.shape[1]))])
        v = np.ones((len(A), 1))
        for _ in range(50):
            v = A @ (A.T @ v)
            v /= np.linalg.norm(v)
        return v.T @ A @ A.T @ v

    assert ex.check_lambda_max(column_vector).right


def test_strict_mode_raises_unless_right(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "strict")
    assert ex.check_relu_prox(relu_prox).right
    with pytest.raises(AssertionError, match="relu_prox: not done yet"):
        ex.check_relu_prox(lambda *a: (_ for _ in ()).throw(NotImplementedError))
    with pytest.raises(AssertionError, match="relu_prox: wrong"):
        ex.check_relu_prox(lambda a, v, g, c: v)


def test_a_check_needs_a_function():
    with pytest.raises(TypeError, match="takes your function itself"):
        ex.check_prox_primal("prox_primal")


def test_the_cg_reference_is_the_packages_cg():
    """The iteration the CG check compares with equals penaltyprop.cg.cg_rows after k steps."""
    rng = np.random.default_rng(0)
    a = rng.random((4, 9))
    A = np.vstack([a, np.ones((1, 9))])
    B = rng.standard_normal((3, 5))
    V, R, P = np.zeros_like(B), B.copy(), B.copy()
    for k in range(1, 5):
        V, R, P = proximal.cg_reference(V, R, P, A, 0.3)
        VW, vb = cg_rows(a, (B[:, :4], B[:, 4]), 0.3, k)
        # the same iteration in another order of operations: rounding only
        np.testing.assert_allclose(V, np.hstack([VW, vb[:, None]]), rtol=1e-10, atol=1e-12)
        H = A @ A.T + np.eye(5) / 0.3
        np.testing.assert_allclose(R, B - V @ H, rtol=1e-10, atol=1e-10)  # R is the residual


def test_either_candidate_is_right_where_they_tie():
    """Where z_+ and z_- give the same f, the ReLU prox has two minimisers: an answer that
    prefers z_+ on ties and one that prefers z_- are both right, and the problems hold a tie."""
    def prefer(tie_goes_to_pos):
        def relu_prox_tie(a, v, gamma, c):
            z_pos, z_neg = np.maximum((gamma * a + c * v) / (gamma + c), 0), np.minimum(v, 0)
            f_pos = gamma / 2 * (a - z_pos) ** 2 + c / 2 * (z_pos - v) ** 2
            f_neg = gamma / 2 * a ** 2 + c / 2 * (z_neg - v) ** 2
            tie = np.abs(f_pos - f_neg) <= 1e-12 * (1 + f_neg)
            return np.where(tie, z_pos if tie_goes_to_pos else z_neg,
                            np.where(f_pos < f_neg, z_pos, z_neg))
        return relu_prox_tie

    assert ex.check_relu_prox(prefer(True)).right and ex.check_relu_prox(prefer(False)).right
    ties = 0
    for a, v, gamma, c, _ in family.relu_problems():
        z_pos, z_neg = np.maximum((gamma * a + c * v) / (gamma + c), 0), np.minimum(v, 0)
        f_pos = gamma / 2 * (a - z_pos) ** 2 + c / 2 * (z_pos - v) ** 2
        f_neg = gamma / 2 * a ** 2 + c / 2 * (z_neg - v) ** 2
        ties += int(((z_pos != z_neg) & (np.abs(f_pos - f_neg) <= 1e-12)).sum())
    assert ties >= 1


def test_the_spectrum_problems_converge_fast():
    """SPECTRUM_RTOL's reason: lambda_2 / lambda_1 < 0.3 on every problem."""
    for _, ev, _ in steps.spectrum_problems():
        assert ev[-2] / ev[-1] < 0.3
