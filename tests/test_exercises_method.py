"""The check of notebook 06's method exercise accepts a right class and names each typical mistake.

Claim: :func:`penaltyprop.exercises.check_prox_every_layer` (a) says "right" for a class whose
direction is ProxProp's with the prox step on every layer, d_l = grad_l J M_l^-1 with
M_l = I/tau_theta + A A^T (Eqs. 13-14), written here with its own forward and backward pass in
plain NumPy; (b) says "wrong", with the intended hint, for the typical mistakes: the last layer
left explicit, tau_theta for 1/tau_theta, a mean for the sum in A A^T, the row of ones missing, a
product from the wrong side, the gradient alone, the wrong loss; a class that is not registered,
accepts a CNN, refuses an MLP, or does not train with its own step size; (c) says "not done" for
the placeholder; (d) answers in one or two lines and leaves the registry as it was.

The classes are defined with ``register=False`` and registered only for the check that needs
it (:func:`registered`), so that no test leaves a method in ``pp.methods.METHODS``.
"""
import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop import exercises as ex
from penaltyprop.backend import array_module
from penaltyprop.exercises import editions
from penaltyprop.exercises.verdict import STRICT_ENV
from penaltyprop.methods import METHODS, Networks, OracleMethod, register, setting, unregister

FULLY_CONNECTED = Networks(fully_connected=True)
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_penalty_family.ipynb"


@pytest.fixture(autouse=True)
def normal_checks(monkeypatch):
    """The checks answer rather than raise, whatever the environment says."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


@contextlib.contextmanager
def registered(cls):
    """``cls`` in the registry for the duration, as its definition in a notebook puts it."""
    register(cls)
    try:
        yield cls
    finally:
        unregister(cls.name)


# --------------------------------------------------------------------------- the solution
def forward_backward(theta, X, y):
    """ReLU MLP, mean softmax cross-entropy, by hand: (inputs a_0..a_(K-1), J, grad J)."""
    a, z = [X], []
    for W, b in theta[:-1]:
        z.append(W @ a[-1] + b[:, None])
        a.append(np.maximum(z[-1], 0))
    W, b = theta[-1]
    s = W @ a[-1] + b[:, None]  # class scores, (C, N)
    N = X.shape[1]
    log_p = s - s.max(axis=0) - np.log(np.exp(s - s.max(axis=0)).sum(axis=0))
    J = -log_p[y, np.arange(N)].mean()
    e = np.exp(log_p)
    e[y, np.arange(N)] -= 1
    e /= N  # dJ/ds of the MEAN loss
    grad = []
    for l in reversed(range(len(theta))):
        grad.append((e @ a[l].T, e.sum(axis=1)))
        if l > 0:
            e = (theta[l][0].T @ e) * (z[l - 1] > 0)
    return a, J, grad[::-1]


def prox_every_layer(theta, X, y, tau_theta, mistake=None):
    """(J, d): d_l = [grad W_l, grad b_l] M_l^-1 on every layer; ``mistake`` makes a typical one."""
    a, J, grad = forward_backward(theta, X, y)
    N, K = X.shape[1], len(theta)
    d = []
    for l, ((gW, gb), a_prev) in enumerate(zip(grad, a), start=1):
        if mistake == "gradient" or (mistake == "explicit last layer" and l == K):
            d.append((gW, gb))
            continue
        if mistake in ("no ones", "bias separately"):
            M = np.eye(len(a_prev)) / tau_theta + a_prev @ a_prev.T
            db = gb if mistake == "no ones" else gb / (1 / tau_theta + N)
            d.append((np.linalg.solve(M, gW.T).T, db))
            continue
        A = np.vstack([a_prev, np.ones((1, N))])  # [a_(l-1); 1^T]
        G = np.hstack([gW, gb[:, None]])  # [grad W_l, grad b_l]
        shift = tau_theta if mistake == "tau" else 1 / tau_theta
        M = shift * np.eye(len(A)) + A @ A.T / (N if mistake == "mean" else 1)  # Eq. 14
        D = np.linalg.solve(M, G) if mistake == "transposed" else np.linalg.solve(M, G.T).T
        d.append((D[:, :-1], D[:, -1]))
    return (N * J if mistake == "sum loss" else J), d


def method_class(mistake=None, networks=FULLY_CONNECTED, default_tau=1.0, name="prox_every_layer",
                 placeholder=False):
    """A ProxEveryLayer class, not registered, as a student writes it in the notebook."""

    @dataclass(frozen=True)
    class ProxEveryLayer(OracleMethod, register=False):
        """ProxProp with the prox step on every layer: d_l = grad_l J M_l^-1."""

        tau_theta: float = setting(0.05, "prox step size tau_theta of Eq. 11")

        def direction(self, net, theta, X, y, check=True):
            if placeholder:
                raise NotImplementedError("write the direction here")
            return prox_every_layer(theta, X, y, self.tau_theta, mistake)

    ProxEveryLayer.name, ProxEveryLayer.default_tau = name, default_tau
    ProxEveryLayer.networks = networks
    return ProxEveryLayer


def verdict_of(cls):
    with registered(cls):
        return ex.check_prox_every_layer(cls)


# --------------------------------------------------------------------------- right, not done
def test_the_solution_is_right_in_one_line():
    before = dict(METHODS)
    verdict = verdict_of(method_class())
    assert verdict.status == "right", verdict.message
    assert verdict.message.startswith("prox_every_layer: right.") and "\n" not in verdict.message
    assert "registered as 'prox_every_layer', refuses a CNN, and trains" in verdict.message
    # a backward pass by hand against the package's, then two dense solves: rounding only
    assert verdict.largest_difference < 1e-9
    assert METHODS == before  # the check registered nothing of its own


def test_a_method_for_relu_networks_only_is_right_too():
    assert verdict_of(method_class(networks=pp.methods.RELU_MLP)).right


def test_the_placeholder_is_not_done():
    verdict = verdict_of(method_class(placeholder=True))
    assert verdict.status == "not done" and "not done yet" in verdict.message
    assert verdict.largest_difference is None


# --------------------------------------------------------------------------- the mistakes
#: (mistake in the direction, words the hint must contain)
DIRECTION_MISTAKES = [
    ("explicit last layer", "last layer is the plain gradient"),
    ("tau", "DIVIDED by tau_theta"),
    ("mean", "M_l has no 1/N"),
    ("no ones", "row of ones"),
    ("bias separately", "row of ones"),
    ("transposed", "multiply from the right"),
    ("gradient", "the gradient itself"),
    ("sum loss", "minibatch loss"),
]


def assert_wrong(verdict, words):
    assert verdict.status == "wrong" and not verdict.right
    assert verdict.message.startswith("prox_every_layer: wrong.")
    lines = verdict.message.split("\n")
    assert len(lines) == 2 and lines[1].startswith("  Hint: ")
    assert words in lines[1], verdict.message


@pytest.mark.parametrize("mistake,words", DIRECTION_MISTAKES)
def test_a_typical_mistake_in_the_direction_is_wrong_with_its_hint(mistake, words):
    assert_wrong(verdict_of(method_class(mistake)), words)


def test_a_direction_off_by_a_little_is_wrong():
    """Right means right to rounding: every d_l 1e-5 relative off is wrong."""
    cls = method_class()
    exact = cls.direction

    def direction(self, net, theta, X, y, check=True):
        J, d = exact(self, net, theta, X, y, check)
        return J, [(dW * (1 + 1e-5), db * (1 + 1e-5)) for dW, db in d]

    cls.direction = direction
    verdict = verdict_of(cls)
    assert verdict.status == "wrong" and "It differs from Eqs. 13-14" in verdict.message


def test_the_last_layer_left_explicit_is_named_by_its_layer():
    """ProxProp's own direction differs on the last layer only, and the message says so."""
    verdict = verdict_of(method_class("explicit last layer"))
    assert "dW_2" in verdict.message.split("\n")[0] and "dW_1 " not in verdict.message


def test_a_method_that_accepts_a_cnn_is_wrong():
    assert_wrong(verdict_of(method_class(networks=pp.methods.ANY_NETWORK)),
                 "Networks(fully_connected=True)")


def test_a_method_that_refuses_an_mlp_is_wrong():
    verdict = verdict_of(method_class(networks=Networks(activations=("tanh",))))
    assert_wrong(verdict, "trains every fully connected network")
    assert "refuses a fully connected ReLU network" in verdict.message


def test_a_step_size_that_does_not_train_is_wrong():
    verdict = verdict_of(method_class(default_tau=1e4))
    assert_wrong(verdict, "lower default_tau")
    assert "Its direction is right" in verdict.message


def test_a_class_that_is_not_registered_is_wrong():
    assert_wrong(ex.check_prox_every_layer(method_class()), "registers itself when it is defined")


def test_a_class_without_the_setting_is_wrong():
    @dataclass(frozen=True)
    class ProxEveryLayer(OracleMethod, register=False):
        name = "prox_every_layer"
        default_tau = 1.0

        def direction(self, net, theta, X, y, check=True):
            return prox_every_layer(theta, X, y, 0.05)

    assert_wrong(verdict_of(ProxEveryLayer), "tau_theta: float = setting(")


def test_a_class_without_the_dataclass_decorator_is_wrong():
    """The student left out @dataclass(frozen=True): the hint says so, not "declare the setting"."""
    class ProxEveryLayer(OracleMethod, register=False):
        name = "prox_every_layer"
        default_tau = 1.0
        networks = FULLY_CONNECTED
        tau_theta: float = setting(0.05, "prox step size tau_theta of Eq. 11")

        def direction(self, net, theta, X, y, check=True):
            return prox_every_layer(theta, X, y, self.tau_theta)

    assert_wrong(verdict_of(ProxEveryLayer), "keep @dataclass(frozen=True)")


def test_a_class_that_is_no_method_is_wrong():
    class ProxEveryLayer:
        name = "prox_every_layer"

    assert_wrong(ex.check_prox_every_layer(ProxEveryLayer), "pp.methods.OracleMethod")


# --------------------------------------------------------------------------- misuse, strict
def test_the_check_takes_the_class_itself():
    cls = method_class()
    with pytest.raises(TypeError, match=r"takes your method class itself.*not a function"):
        ex.check_prox_every_layer(lambda *a: None)
    with pytest.raises(TypeError, match="not a ProxEveryLayer object"):
        ex.check_prox_every_layer(cls())


def test_strict_mode_raises_unless_right(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "strict")
    assert verdict_of(method_class()).right
    with pytest.raises(AssertionError, match="prox_every_layer: not done yet"):
        verdict_of(method_class(placeholder=True))
    with pytest.raises(AssertionError, match="prox_every_layer: wrong"):
        verdict_of(method_class("tau"))


# --------------------------------------------------------------------------- the notebook's cells
@pytest.fixture
def registry():
    """METHODS as it was before the test, afterwards (the notebook's cells register a class)."""
    before = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(before)


def notebook_cell(tag):
    """The source of notebook 06's cell with this tag that defines ProxEveryLayer."""
    (cell,) = [c for c in editions.read_notebook(NOTEBOOK)["cells"]
               if tag in editions.tags(c) and "class ProxEveryLayer" in editions.source(c)]
    return editions.source(cell)


def test_the_notebooks_placeholder_runs_twice_and_its_solution_is_right(registry):
    """As in a kernel: the placeholder registers (a re-run replaces it) and is not done; the
    solution cell, run after it, replaces it again and is right."""
    kernel = {"__name__": "__main__", "pp": pp, "dataclass": dataclass,
              "array_module": array_module}
    exec(notebook_cell(editions.EXERCISE), kernel)
    first = kernel["ProxEveryLayer"]
    exec(notebook_cell(editions.EXERCISE), kernel)  # the cell run again
    assert METHODS["prox_every_layer"] is kernel["ProxEveryLayer"] is not first
    assert ex.check_prox_every_layer(kernel["ProxEveryLayer"]).status == "not done"
    exec(notebook_cell(editions.SOLUTION), kernel)
    assert METHODS["prox_every_layer"] is kernel["ProxEveryLayer"]
    assert ex.check_prox_every_layer(kernel["ProxEveryLayer"]).right
