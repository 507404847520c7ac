"""Bad input gets a ValueError that names the argument, never a deep traceback or NaN."""
import numpy as np
import pytest
from helpers import random_problem

import penaltyprop as pp
from penaltyprop.checks import check_problem, check_sizes


@pytest.fixture
def problem():
    return random_problem([5, 6, 4, 3], 7, seed=0)


def test_wrong_X_shape(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match=r"X must have shape \(5, 'N'\)"):
        pp.proxprop(net, theta, X.T, y, 1.0, 1.0)
    with pytest.raises(ValueError, match="X must have shape"):
        pp.forward(net, theta, X[:, 0])


def test_non_finite_X(problem):
    net, theta, X, y = problem
    X = X.copy()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        pp.penalty_backprop(net, theta, X, y, 0.1)
    X[2, 3] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        pp.gradient(net, theta, X, y)


def test_integer_X(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="X must be a floating array"):
        pp.loss(net, theta, X.astype(int), y)


@pytest.mark.parametrize("bad", [np.array([0, 1, 2, 3, 0, 1, 7]), np.array([0, -1, 2, 0, 0, 1, 2])])
def test_labels_out_of_range(problem, bad):
    net, theta, X, _ = problem
    with pytest.raises(ValueError, match=r"y must hold labels in 0\.\.2"):
        pp.loss(net, theta, X, bad)


def test_labels_wrong_shape_or_type(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match=r"y must have shape \(7,\)"):
        pp.gradient(net, theta, X, y[:5])
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        pp.gradient(net, theta, X, y.astype(float))


@pytest.mark.parametrize("tau", [0, -1.0, float("nan"), float("inf"), "1"])
def test_tau_must_be_positive(problem, tau):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        pp.proxprop(net, theta, X, y, tau, 1.0)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        pp.penalty_backprop(net, theta, X, y, tau)


@pytest.mark.parametrize("tau_theta", [0, -0.5])
def test_tau_theta_must_be_positive(problem, tau_theta):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="tau_theta must be a finite number > 0"):
        pp.proxprop(net, theta, X, y, 1.0, tau_theta)
    with pytest.raises(ValueError, match="tau_theta"):
        pp.proxprop_direction(net, theta, X, y, tau_theta)


def test_rho_gamma_must_be_positive(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="rho must be"):
        pp.penalty_backprop(net, theta, X, y, 1.0, rho=-1.0)
    with pytest.raises(ValueError, match="gamma must be"):
        pp.penalty_backprop(net, theta, X, y, 1.0, gamma=0.0)


@pytest.mark.parametrize("k", [0, -3, 2.5, None])
def test_cg_iterations_must_be_a_positive_integer(problem, k):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="cg_iterations"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="cg", cg_iterations=k)


def test_unknown_options(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="solver must be one of"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="newton")
    with pytest.raises(ValueError, match="exact_system must be one of"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, exact_system="dual")
    with pytest.raises(ValueError, match="cg_variant must be one of"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="cg", cg_iterations=2, cg_variant="fast")
    with pytest.raises(ValueError, match="activation must be one of"):
        pp.mlp([3, 4, 2], activation="softplus")
    with pytest.raises(ValueError, match="dtype must be"):
        pp.mlp([3, 2]).init(dtype="float16")
    with pytest.raises(ValueError, match="backend must be one of"):
        pp.mlp([3, 2]).init(backend="jax")


def test_bad_sizes():
    with pytest.raises(ValueError, match="sizes needs at least"):
        pp.mlp([3])
    with pytest.raises(ValueError, match="sizes must be positive integers"):
        pp.mlp([3, 0, 2])


def test_theta_that_does_not_fit_the_network(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match=r"theta must be a list of 3 \(W, b\) pairs"):
        pp.proxprop(net, theta[:2], X, y, 1.0, 1.0)
    bad = list(theta)
    bad[1] = (theta[1][0].T, theta[1][1])
    with pytest.raises(ValueError, match=r"theta\[1\]\[0\] \(W\) must have shape \(4, 6\)"):
        pp.gradient(net, bad, X, y)
    with pytest.raises(ValueError, match="dtype float32 but X has float64"):
        pp.gradient(net, [(W.astype(np.float32), b.astype(np.float32)) for W, b in theta], X, y)


def test_energy_arguments(problem):
    net, theta, X, y = problem
    a, z = pp.forward(net, theta, X)
    with pytest.raises(ValueError, match="rho must be"):
        pp.penalty_energy(net, theta, a, z, y, rho=0, gamma=1)
    with pytest.raises(ValueError, match="a and z must hold"):
        pp.penalty_energy(net, theta, a[:1], z, y, rho=1, gamma=1)


# --------------------------------------------------------------------------- theta and array kinds
# (issue 14: theta was barely checked; matrices, masked arrays and byte order failed deep inside)
def test_non_finite_theta_names_layer_and_parameter(problem):
    net, theta, X, y = problem
    bad = [(W.copy(), b.copy()) for W, b in theta]
    bad[1][0][2, 3] = np.nan
    with pytest.raises(ValueError, match=r"theta\[1\]\[0\] \(W\) contains NaN or inf"):
        pp.gradient(net, bad, X, y)
    bad = [(W.copy(), b.copy()) for W, b in theta]
    bad[2][1][0] = -np.inf
    with pytest.raises(ValueError, match=r"theta\[2\]\[1\] \(b\) contains NaN or inf"):
        pp.proxprop(net, bad, X, y, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"theta\[2\]\[1\] \(b\) contains NaN or inf"):
        pp.forward(net, bad, X)


def test_a_diverged_runs_theta_passes_only_when_asked(problem):
    net, theta, X, y = problem
    diverged = [(np.full_like(W, np.inf), b) for W, b in theta]
    check_problem(net, diverged, X, y, finite_theta=False)  # resuming a diverged run
    with pytest.raises(ValueError, match=r"theta\[0\]\[0\] \(W\) contains NaN or inf"):
        check_problem(net, diverged, X, y)


def test_theta_mixing_float32_and_float64_is_refused(problem):
    net, theta, X, y = problem
    X32 = X.astype(np.float32)
    mixed = [(W.astype(np.float32), b.astype(np.float32)) for W, b in theta]
    mixed[0] = (mixed[0][0], theta[0][1])  # float64 b next to a float32 W
    with pytest.raises(ValueError, match=r"theta\[0\] mixes dtypes: W is float32, b is float64"):
        pp.loss(net, mixed, X32, y)


def test_float16_is_refused_saying_what_is_supported(problem):
    net, theta, X, y = problem
    half = [(W.astype(np.float16), b.astype(np.float16)) for W, b in theta]
    with pytest.raises(ValueError, match=r"X must be a floating array \(float32 or float64\), "
                                         "got float16"):
        pp.gradient(net, half, X.astype(np.float16), y)
    with pytest.raises(ValueError, match=r"theta\[0\]\[0\] \(W\) has dtype float16; only "
                                         "float32 and float64 are supported"):
        pp.gradient(net, half, X.astype(np.float32), y)


def test_numpy_integer_layer_sizes_are_integers():
    sizes = check_sizes([np.int64(5), np.int32(4), 3])
    assert sizes == [5, 4, 3] and all(type(n) is int for n in sizes)
    for bad in ([3, 0, 2], [3, 2.0], [3, True], [3, np.bool_(True)]):
        with pytest.raises(ValueError, match="sizes must be positive integers"):
            check_sizes(bad)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix's own
@pytest.mark.parametrize("kind, message", [
    (np.asmatrix, r"is a numpy.matrix; pass numpy.asarray"),
    (lambda a: np.ma.masked_array(a, mask=np.zeros(a.shape, bool)), "is a masked array"),
    (lambda a: a.astype(a.dtype.newbyteorder()), r"has non-native byte order .*astype"),
])
def test_matrix_masked_and_byte_swapped_arrays_get_clear_errors(problem, kind, message):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match=f"^X {message}"):
        pp.gradient(net, theta, kind(X), y)
    bad = list(theta)
    bad[1] = (kind(theta[1][0]), theta[1][1])
    with pytest.raises(ValueError, match=rf"^theta\[1\]\[0\] \(W\) {message}"):
        pp.proxprop(net, bad, X, y, 1.0, 1.0)
    if kind is not np.asmatrix:  # a (1, N) matrix of labels already fails the shape check
        with pytest.raises(ValueError, match=f"^y {message}"):
            pp.loss(net, theta, X, kind(y))


@pytest.mark.parametrize("system", ["batch", "primal"])
def test_exact_prox_on_huge_inputs_says_what_happened_and_what_to_do(system):
    """Inputs near 1e150 make the Eq. 44 system lose positive definiteness in float64: the
    error names the system and the remedies instead of LAPACK's bare message (issue 14)."""
    rng = np.random.default_rng(0)
    net = pp.mlp([20, 30, 10])
    theta = net.init(seed=0, dtype="float64")
    N = 10 if system == "batch" else 40  # batch: K = N < m + 1 = 21; primal: the other way
    X = 1e150 * np.outer(rng.random(20), rng.random(N))  # low rank: I/tau_theta is lost in rounding
    y = rng.integers(0, 10, N)
    with pytest.raises(ValueError, match=r"exact prox: .*not positive definite.*Scale the data"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="exact", exact_system=system)


def test_mlp_takes_numpy_integer_sizes_and_refuses_others():
    """Layer sizes from NumPy (np.int64, an array) build the same network as Python ints."""
    assert repr(pp.mlp(np.array([6, 5, 3]))) == repr(pp.mlp([6, 5, 3]))
    for bad in ([6, 5.5, 3], [6, 0, 3], [6, True, 3]):
        with pytest.raises(ValueError, match="sizes must be positive integers"):
            pp.mlp(bad)
