r"""Notebook 06: a training method of one's own, ProxProp with the prox step on every layer.

ProxProp (Algorithm 2) takes the proximal step of Eq. 11 on the hidden layers and keeps the
explicit step on the last one. The student changes that one block and writes the method as the
package's methods are written: a frozen dataclass ``ProxEveryLayer`` deriving from
:class:`~penaltyprop.methods.OracleMethod`, registered by its definition under
``name = "prox_every_layer"``, with the setting ``tau_theta``, a ``default_tau``, the networks
it can train, and the direction, on every layer :math:`l = 1..K` (the last one too),

.. math:: d_l = \nabla_{\theta_l}J\,M_l^{-1}, \qquad
          M_l = \tfrac{1}{\tau_\theta} I + A_{l-1}A_{l-1}^\top, \qquad
          A_{l-1} = \begin{bmatrix} a_{l-1} \\ \mathbf 1^\top \end{bmatrix},

with :math:`\theta_l = [W_l, b_l]` one :math:`n_l \times (n_{l-1} + 1)` matrix (Proposition 2,
Eqs. 13-14). On the last layer it is the prox step on
:math:`\tfrac12\|\phi(\theta_K, a_{K-1}) - z_K^{k+1/2}\|^2` towards the target
:math:`z_K^{k+1/2} = z_K - \nabla\mathcal L_y(z_K)` of step (a): Proposition 2's argument again.

The check, in this order:

1. the class derives from OracleMethod and is registered (``METHODS[cls.name] is cls``);
2. its direction, on random ReLU MLPs of several shapes and several tau_theta in float64:
   J is the loss (Eq. 1), and every :math:`d_l` equals the formula, with :math:`\nabla J` from
   classical backpropagation (:func:`penaltyprop.gradient`) and :math:`M_l^{-1}` by a dense solve;
3. it refuses a convolutional network before any work (``check_net`` raises ValueError), and
   accepts an MLP: :math:`M_l` is the prox operator of a fully connected layer only;
4. it trains: run as the family comparison runs it (``family_run``: its defaults, optimizer and
   step) for a few epochs on Gaussian blobs, its training loss falls.
"""
from __future__ import annotations

from ..backend import host_rng
from ..backend import numpy as np
from ..conv import cnn
from ..data.base import Dataset
from ..forward import forward, gradient, loss
from ..methods import METHODS, OracleMethod
from ..network import mlp
from ..optim import make_optimizer
from ..train import train
from .verdict import NotDone, Wrong, as_array, call, checker, close, compare, over, shapes, unpack

#: (widths, N, tau_theta): no layer has n_l = n_(l-1) + 1, so that a product taken from the
#: wrong side fails on the shapes; N = 3 is fewer samples than a layer's inputs (A A^T is
#: singular, only I/tau_theta makes M invertible); tau_theta != 1 and N > 1 keep the known
#: mistakes (tau_theta for 1/tau_theta, A A^T / N) apart from the answer.
PROBLEMS = (([5, 4, 3], 7, 0.5), ([6, 5, 5, 4], 3, 0.05), ([3, 5, 4, 2], 9, 2.0))

SHAPE_HINT = ("theta_l = [W_l, b_l] is (n_l, n_(l-1) + 1) and M_l is square, of side n_(l-1) + 1: "
              "multiply from the right, d_l = grad_l M_l^-1 = solve(M_l, grad_l^T)^T.")
FORMULA = ("d_l = grad_l J M_l^-1 on every layer l = 1..K, M_l = I/tau_theta + A A^T, "
           "A = [a_(l-1); 1^T] (Eq. 14).")
#: the training part of the check: Gaussian blobs, a small MLP, a few epochs
TRAIN_WIDTHS, TRAIN_SAMPLES, TRAIN_BATCH, TRAIN_EPOCHS = (6, 8, 3), 60, 20, 5


def problems(seed=5):
    """``(net, theta, X, y, tau_theta, description)``: random ReLU MLPs in float64."""
    rng = host_rng(seed)
    for i, (widths, N, tau_theta) in enumerate(PROBLEMS):
        net = mlp(widths)
        theta = [(2 * W, 2 * b) for W, b in net.init(seed=seed + i)]  # more ReLUs off
        X = rng.standard_normal((widths[0], N))
        y = rng.integers(0, widths[-1], N)
        yield net, theta, X, y, tau_theta, (f"problem {i + 1} of {len(PROBLEMS)}: MLP "
                                            f"{'-'.join(map(str, widths))}, "
                                            + shapes(X=X, tau_theta=tau_theta))


def layer_direction(gW, gb, a_prev, tau_theta, ones=True, shift=None, scale=1.0):
    r"""One layer's :math:`[\nabla W, \nabla b]\,M^{-1}`, :math:`M = sI + cAA^\top` (Eq. 14).

    gW (n, m), gb (n,): the layer's gradient; a_prev (m, N): its input. The formula is
    ``s = 1/tau_theta``, ``c = 1`` and the row of ones in A = [a; 1^T]; the other values
    give the known mistakes (``ones=False``: A = a, and gb comes back unchanged). Returns
    ``(dW (n, m), db (n,))``.
    """
    s = 1 / tau_theta if shift is None else shift
    A = np.vstack([a_prev, np.ones((1, a_prev.shape[1]))]) if ones else a_prev  # (m+1, N)
    G = np.hstack([gW, gb[:, None]]) if ones else gW  # (n, m+1)
    M = s * np.eye(len(A)) + scale * (A @ A.T)  # Eq. 14, symmetric positive definite
    D = np.linalg.solve(M, G.T).T  # G M^-1
    return (D[:, :-1], D[:, -1]) if ones else (D, gb)


def directions(grad, a, tau_theta, **mistake):
    """Every layer's :func:`layer_direction`, as a dict ``{"dW_l": ..., "db_l": ...}``."""
    out = {}
    for l, ((gW, gb), a_prev) in enumerate(zip(grad, a), start=1):
        out[f"dW_{l}"], out[f"db_{l}"] = layer_direction(gW, gb, a_prev, tau_theta, **mistake)
    return out


def mistakes(grad, a, tau_theta, N):
    """Known mistakes and their hints: ``[(answers, hint)]``, answers by output name."""
    K = len(grad)
    ones = ("the bias is the last column of theta_l = [W_l, b_l]: A = [a_(l-1); 1^T] has a row "
            "of ones, and M_l couples b_l with W_l.")
    no_ones = directions(grad, a, tau_theta, ones=False)
    separate = {**no_ones, **{f"db_{l}": gb / (1 / tau_theta + N)
                              for l, (_, gb) in enumerate(grad, start=1)}}
    return [
        ({f"dW_{K}": grad[-1][0], f"db_{K}": grad[-1][1]},
         "the last layer is the plain gradient, as in ProxProp (Algorithm 2's explicit step "
         "(a)): this method takes the prox step on theta_K too, d_K = grad_K J M_K^-1."),
        (directions(grad, a, tau_theta, shift=tau_theta),
         "M_l = I/tau_theta + A A^T (Eq. 14): the identity is DIVIDED by tau_theta."),
        (directions(grad, a, tau_theta, scale=1 / N),
         "M_l has no 1/N: the penalty of Eq. 11 sums over the samples, and the 1/N of the mean "
         "loss is in grad J already."),
        (no_ones, ones),
        (separate, ones),
        ({f"d{p}_{l}": g for l, pair in enumerate(grad, start=1) for p, g in zip("Wb", pair)},
         "that is the gradient itself: multiply it by M_l^-1 on every layer."),
    ]


def instance(cls, problem, **settings):
    """``cls(**settings)``, or Wrong naming the setting the exercise asks for."""
    try:
        return cls(**settings)
    except NotImplementedError:
        raise NotDone() from None
    except Exception as err:  # the student's class: any error is an answer to report
        args = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        text = " ".join(str(err).split())
        hint = ("keep @dataclass(frozen=True) on the line above the class, as in the placeholder: "
                "a method's settings are the fields of a frozen dataclass."
                if "dataclass" in text else
                "declare the setting in the class body: tau_theta: float = "
                "setting(0.05, 'prox step size tau_theta of Eq. 11').")
        raise Wrong(f"{cls.__name__}({args}) raised {type(err).__name__}: {text[:120]} "
                    f"({problem}).", hint) from None


def one_problem(cls, net, theta, X, y, tau_theta, problem):
    """The largest difference on one problem, or Wrong."""
    method = instance(cls, problem, tau_theta=tau_theta)
    mine = [(W.copy(), b.copy()) for W, b in theta]
    out = call(method.direction, (net, mine, X, y), problem, SHAPE_HINT)
    J, d = unpack(out, ("J", "d"), problem)
    K = net.n_linear
    if not isinstance(d, (list, tuple)) or len(d) != K:
        got = f"{len(d)} entries" if isinstance(d, (list, tuple)) else type(d).__name__
        raise Wrong(f"d should be a list of {K} pairs (dW_l, db_l), one per layer, got {got} "
                    f"({problem}).", "return J, d with d = [(dW_1, db_1), ..., (dW_K, db_K)].")
    names = [f"d{p}_{l}" for l in range(1, K + 1) for p in "Wb"]
    got = [x for l, pair in enumerate(d, start=1)
           for x in unpack(pair, (f"dW_{l}", f"db_{l}"), problem)]
    grad = gradient(net, theta, X, y)  # classical backprop, Eq. 2
    a, _ = forward(net, theta, X)  # a[l - 1]: the input of layer l
    want = directions(grad, a, tau_theta)
    got = tuple(as_array(x, n, want[n].shape, problem) for x, n in zip(got, names))
    J_want = float(loss(net, theta, X, y))
    J_got = as_array(J, "J", (), problem)
    if not close(J_got, np.asarray(J_want)):
        raise Wrong(f"J = {float(J_got):.6g}, but the loss J(theta; X, y) is {J_want:.6g} "
                    f"({problem}).", "return the minibatch loss (Eq. 1) beside d, as "
                                     "pp.BackProp().direction(net, theta, X, y) gives it.")
    return compare(got, tuple(want[n] for n in names), names, problem, "Eqs. 13-14",
                   mistakes(grad, a, tau_theta, X.shape[1]), FORMULA)


def check_registered(cls):
    """Wrong unless ``cls`` derives from OracleMethod and is the registered class of its name."""
    if not issubclass(cls, OracleMethod):
        raise Wrong(f"{cls.__name__} is no training method: it does not derive from "
                    f"OracleMethod.", "write @dataclass(frozen=True) and class "
                                      f"{cls.__name__}(pp.methods.OracleMethod): ...")
    name = cls.name
    if METHODS.get(name) is not cls:
        other = METHODS.get(name)
        raise Wrong(f"{cls.__name__} is not registered: pp.methods.METHODS[{name!r}] is "
                    f"{'missing' if other is None else other.__qualname__}.",
                    "a class that sets its own name = '...' registers itself when it is "
                    "defined: set the name, and run the cell that defines it again.")


def check_networks(cls):
    """Wrong unless the method refuses a CNN and accepts a fully connected ReLU network."""
    method = instance(cls, "with its defaults")
    try:
        method.check_net(mlp([4, 3, 2]))
    except ValueError as err:
        raise Wrong(f"It refuses a fully connected ReLU network: {err}.",
                    "it trains every fully connected network: networks = "
                    "pp.methods.Networks(fully_connected=True).") from None
    try:
        method.check_net(cnn(in_shape=(1, 4, 4), channels=(2,), kernel_size=3, padding=1,
                             n_classes=3))
    except ValueError:
        return
    raise Wrong("It accepts a convolutional network, which its direction cannot train: "
                "M_l = I/tau_theta + A A^T is the prox operator of a fully connected layer.",
                "declare what it trains, so that check_net refuses the rest before any work: "
                "networks = pp.methods.Networks(fully_connected=True).")


def blobs(seed=6) -> Dataset:
    """Gaussian blobs in :data:`TRAIN_WIDTHS` [0] dimensions, one class per blob."""
    rng = host_rng(seed)
    d, C = TRAIN_WIDTHS[0], TRAIN_WIDTHS[-1]
    means = rng.uniform(size=(C, d))  # (C, d)

    def part(n):
        y = rng.integers(0, C, size=n)  # (n,)
        return means[y] + 0.1 * rng.standard_normal((n, d)), y.astype(np.int64)

    return Dataset("blobs", *part(TRAIN_SAMPLES), *part(20), *part(20), C, (1, 1, d))


def check_training(cls):
    """Train the method as the family comparison runs it; the loss must fall. Returns
    ``(first loss, last loss)``."""
    run = call(cls.family_run, (), "family_run()")
    opt = call(make_optimizer, (run.optimizer, run.tau), "its default optimizer")
    result = call(lambda: train(mlp(list(TRAIN_WIDTHS)), blobs(), opt, run.method,
                                batch_size=TRAIN_BATCH, epochs=TRAIN_EPOCHS, dtype="float64",
                                progress=False),
                  (), f"training on {TRAIN_SAMPLES} samples")
    h = result.history
    first, last = h["train_loss"][0], h["train_loss"][-1]
    if result.diverged or not last < first:
        what = (f"diverged ({h['diverged_reason']})" if result.diverged
                else f"went from {first:.4g} to {last:.4g}")
        raise Wrong(f"Its direction is right, but trained with {run.optimizer} at tau = "
                    f"{run.tau:g} (its default_tau) for {TRAIN_EPOCHS} epochs on "
                    f"{TRAIN_SAMPLES} samples, its loss {what}.",
                    "lower default_tau, the learning rate with its default optimizer (ProxProp "
                    "takes 1 with Nesterov momentum), or the default of tau_theta.")
    return first, last


@checker("prox_every_layer", "Eqs. 13-14 on every layer", class_name="ProxEveryLayer")
def check_prox_every_layer(cls):
    r"""Check the class ``ProxEveryLayer``: ProxProp with the prox step on every layer.

    Parameters
    ----------
    cls : type
        The student's method class: a frozen dataclass deriving from
        :class:`~penaltyprop.methods.OracleMethod`, with a ``name``, the setting ``tau_theta``,
        ``default_tau``, ``networks`` and ``direction(net, theta, X, y, check=True) -> (J, d)``.

    Returns
    -------
    Verdict
        Right when the class is registered, its direction is
        :math:`d_l = \nabla_{\theta_l}J\,M_l^{-1}` with
        :math:`M_l = I/\tau_\theta + A_{l-1}A_{l-1}^\top` on every layer (Eqs. 13-14) on every
        problem, it refuses a CNN, and its loss falls in a short training run.
    """
    check_registered(cls)
    diff, n = over(problems(), lambda *p: one_problem(cls, *p))
    check_networks(cls)
    first, last = check_training(cls)
    return diff, n, (f"It is registered as {cls.name!r}, refuses a CNN, and trains (loss "
                     f"{first:.3g} -> {last:.3g} in {TRAIN_EPOCHS} epochs).")
