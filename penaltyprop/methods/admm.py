r"""ADMM without gradients: Taylor, Burmeister, Xu, Singh, Patel, Goldstein, ICML 2016.

**Objective** (their Eq. 4, with a 1/2 on each penalty and with biases; see below): the
augmented Lagrangian of the lifted problem with a multiplier :math:`\lambda` (C, N) on the
output only,

.. math:: \mathcal{L}_\beta = \ell_y(z_K) + \langle z_K, \lambda\rangle
          + \frac{\beta}{2}\|z_K - \phi(\theta_K, a_{K-1})\|^2
          + \sum_{l=1}^{K-1}\Big(\frac{\gamma}{2}\|a_l - \sigma(z_l)\|^2
          + \frac{\beta}{2}\|z_l - \phi(\theta_l, a_{l-1})\|^2\Big),

i.e. :math:`F + \langle z_K, \lambda\rangle` with :math:`\rho = \beta` (:mod:`.lifted`). The paper
writes :math:`\beta\|\cdot\|^2` without the 1/2 and updates :math:`\lambda \mathrel{+}= \beta r`;
with that scaling the z_K-optimality gives :math:`-\nabla\ell = \lambda + 2\beta r`, so the KKT
condition :math:`\lambda \in -\partial\ell_y(z_K)` would need the step :math:`2\beta`. Writing the
penalties with 1/2 makes the paper's update exactly the multiplier step of this Lagrangian;
the defaults keep the paper's numbers, gamma = 10, beta = 1 (so its penalties are twice ours).
The paper has no biases; here :math:`\phi(\theta_l, a) = W_l a + b_l\mathbf 1^\top` throughout.

**One sweep** (the paper's Algorithm 1, forward through the layers):

* for l = 1 .. K-1:

  - :math:`\theta_l \leftarrow \arg\min \|z_l - \phi(\theta, a_{l-1})\|^2` (least squares,
    :math:`W_l = z_l a_{l-1}^+`), here with a tiny proximal ridge
    :math:`\tfrac{\epsilon}{2}\|\theta - \theta^k_l\|^2`, :math:`\epsilon` = ``ridge`` times the mean
    eigenvalue :math:`\|A\|_F^2/\min(n_{l-1}+1, N)` of :math:`AA^\top`, :math:`A = [a_{l-1}; \mathbf 1^\top]`.
    That is ProxProp's Eq. 44 with :math:`\tau_\theta = 1/\epsilon`, solved in batch space when
    N < n_{l-1}+1 (:func:`penaltyprop.prox.prox_exact`). Centring the ridge at :math:`\theta^k`
    (not at 0) keeps the step a descent step, and it tends to the least-squares solution nearest
    :math:`\theta^k` as :math:`\epsilon \to 0`;
  - :math:`a_l \leftarrow (\beta W_{l+1}^\top W_{l+1} + \gamma I)^{-1}(\beta W_{l+1}^\top(z_{l+1} - b_{l+1})
    + \gamma\sigma(z_l))` (:func:`.lifted.a_step`; :math:`\theta_{l+1}` from the previous sweep);
  - :math:`z_l \leftarrow \arg\min \tfrac{\gamma}{2}\|a_l - \sigma(z)\|^2 + \tfrac{\beta}{2}\|z -
    \phi(\theta_l, a_{l-1})\|^2`, by cases for ReLU (:func:`.lifted.relu_prox`);

* :math:`\theta_K` by the same least squares;
* :math:`z_K \leftarrow \arg\min \ell_y(z) + \langle z, \lambda\rangle + \tfrac{\beta}{2}\|z - \phi(\theta_K,
  a_{K-1})\|^2 = \operatorname{prox}(\phi - \lambda/\beta)`. The paper's binary hinge loss has a
  closed form here; softmax cross-entropy (the default, the package's multi-class loss) has none:
  ``output_steps`` gradient steps from the current :math:`z_K`. ``loss="squared"`` is closed form;
* :math:`\lambda \leftarrow \lambda + \beta\,(z_K - \phi(\theta_K, a_{K-1}))`: accumulated (a bug reported
  against the public port assigned :math:`\beta r` instead of adding it), and only after the first
  ``warm_start_sweeps`` sweeps, during which :math:`\lambda = 0` and every step is an exact block
  minimiser (or a descent step) of :math:`\mathcal{L}_\beta = F`, which therefore never increases.

After a multiplier update, :math:`\lambda = -\nabla\ell_y(z_K)` (exactly for an exact z_K-step).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import array_module, to_float
from ..checks import check_choice, check_int, check_positive
from ..prox import prox_exact
from ..transfer import apply_A
from . import costs, lifted
from .base import LiftedMethod
from .networks import RELU_MLP
from .settings import setting


def admm_advice(beta, gamma, ridge, dtype):
    """What to change when an ADMM block fails: its ridge or weights, or the precision."""
    return {"theta": f"its ridge {ridge:.3g} is too small for {dtype} (the default is the square "
                     f"root of the machine epsilon): raise ridge, or use float64",
            "a": f"its weight gamma/beta = {gamma / beta:.3g} is too small next to W^T W in "
                 f"{dtype}: raise gamma or lower beta, or use float64",
            "overflow": lifted.overflow_advice(dtype, beta=beta, gamma=gamma)}


def least_squares_step(theta_l, a_prev, z_l, ridge):
    r"""The theta-step: :math:`\arg\min_\theta \tfrac12\|z_l - \phi(\theta, a_{l-1})\|^2
    + \tfrac{\epsilon}{2}\|\theta - \theta_l\|^2` (see the module docstring for :math:`\epsilon`),
    a new (W, b)."""
    W, b = theta_l
    m, N = a_prev.shape
    mean_eig = (to_float((a_prev ** 2).sum()) + N) / min(m + 1, N)  # ||A||_F^2 / rank bound
    eps = ridge * mean_eig
    dW, db = prox_exact(a_prev, apply_A(W, b, a_prev) - z_l, 1.0 / eps)  # Eq. 44, tau_theta = 1/eps
    return W + dW, b + db


def admm_steps(net, theta, state, y, beta, gamma, ridge, loss, output_steps, update_multiplier):
    r"""One ADMM sweep as a generator that pauses after every block update.

    Yields ``(block, l, theta, a, z, lam)`` with block in ``"theta"``, ``"a"``, ``"z"``,
    ``"z_out"``, ``"lambda"`` (the last only when ``update_multiplier``). New lists; no input
    array is modified.
    """
    K = net.n_linear
    theta, a, z, lam = list(theta), list(state.a), list(state.z), state.lam
    advice = admm_advice(beta, gamma, ridge, a[0].dtype)  # names the weights as given
    beta, gamma, ridge = lifted.in_dtype(a[0].dtype, beta, gamma, ridge)
    for l in range(1, K):  # l = 1 .. K-1
        blk = net.blocks[l - 1]
        with lifted.explain_failure(f"ADMM theta-step of layer {l}",
                                    {**advice, "solve": advice["theta"]}, a[l - 1]):
            theta[l - 1] = least_squares_step(theta[l - 1], a[l - 1], z[l], ridge)
        yield "theta", l, theta, a, z, lam
        # a_l: (beta W_{l+1}^T W_{l+1} + gamma I) a = beta W_{l+1}^T (z_{l+1} - b) + gamma sigma(z_l)
        with lifted.explain_failure(f"ADMM a-step of layer {l}",
                                    {**advice, "solve": advice["a"]}, theta[l][0]):
            a[l] = lifted.a_step(theta[l], z[l + 1], blk.sigma(z[l]), beta, gamma)
        yield "a", l, theta, a, z, lam
        # z_l: argmin gamma/2||a_l - relu(z)||^2 + beta/2||z - phi(theta_l, a_{l-1})||^2
        z[l] = lifted.relu_prox(a[l], blk.phi(theta[l - 1], a[l - 1]), gamma, beta)
        yield "z", l, theta, a, z, lam
    with lifted.explain_failure(f"ADMM theta-step of layer {K}",
                                {**advice, "solve": advice["theta"]}, a[K - 1]):
        theta[K - 1] = least_squares_step(theta[K - 1], a[K - 1], z[K], ridge)
    yield "theta", K, theta, a, z, lam
    m = net.blocks[-1].phi(theta[K - 1], a[K - 1])  # phi(theta_K, a_{K-1})
    v = m if lam is None else m - lam / beta  # <z, lam> + beta/2||z - m||^2 = beta/2||z - v||^2 + const
    z[K] = lifted.output_prox(v, y, beta, loss, output_steps, z0=z[K])
    yield "z_out", K, theta, a, z, lam
    if update_multiplier:
        r = z[K] - m  # the output constraint's residual
        lam = beta * r if lam is None else lam + beta * r  # lambda += beta r (accumulated)
        yield "lambda", K, theta, a, z, lam


@dataclass(frozen=True)
class ADMM(LiftedMethod):
    r"""ADMM without gradients on the augmented Lagrangian of the module docstring.

    Parameters
    ----------
    beta : float > 0
        Weight of the linear constraints and the multiplier step (paper: 1).
    gamma : float > 0
        Weight of the constraints :math:`a_l = \sigma(z_l)` (paper: 10).
    warm_start_sweeps : int >= 0
        Sweeps without the multiplier (lambda = 0) before it is updated after every sweep.
    loss : {"cross_entropy", "squared"}
        ``"cross_entropy"`` (default) or ``"squared"`` (closed-form output step).
    output_steps : int >= 1
        Gradient steps of the cross-entropy output block.
    ridge : float > 0 or None
        The relative ridge of the least-squares theta-step (default: the square root of the
        dtype's machine epsilon, 1.5e-8 in float64 and 3.5e-4 in float32, which bounds the
        condition number of the solve by about 1/sqrt(eps) times the spread of the Gram's
        eigenvalues about their mean).
    """

    name = "admm"
    networks = RELU_MLP  # the a-step solves with W^T W, the z-step is the ReLU prox
    beta: float = setting(1.0, "weight beta of the linear constraints and the multiplier step")
    gamma: float = setting(10.0, "weight gamma of the constraints a_l = sigma(z_l)")
    warm_start_sweeps: int = setting(5, "sweeps without the multiplier before it is updated")
    loss: str = setting("cross_entropy", "output loss: cross_entropy or squared")
    output_steps: int = setting(10, "gradient steps of the cross-entropy output block")
    ridge: float = setting(None, "relative ridge of the least-squares W-step "
                                 "(default sqrt of the dtype's machine epsilon)")

    def __post_init__(self):
        for name in ("beta", "gamma"):
            object.__setattr__(self, name, check_positive(getattr(self, name), name))
        object.__setattr__(self, "warm_start_sweeps",
                           check_int(self.warm_start_sweeps, "warm_start_sweeps", 0))
        check_choice(self.loss, "loss", lifted.LOSSES)
        object.__setattr__(self, "output_steps", check_int(self.output_steps, "output_steps", 1))
        if self.ridge is not None:
            object.__setattr__(self, "ridge", check_positive(self.ridge, "ridge"))

    @property
    def label(self) -> str:
        return "ADMM" if self.loss == "cross_entropy" else "ADMM (squared loss)"

    def init_state(self, net, theta, X, y):
        """Activations from a forward pass and no multiplier (lambda = 0)."""
        return lifted.init_state(net, theta, X, y, self.name)

    def _ridge(self, X):
        return self.ridge if self.ridge is not None else \
            float(array_module(X).finfo(X.dtype).eps) ** 0.5

    def steps(self, net, theta, state, X, y):
        """The sweep as a generator over its block updates (``admm_steps`` in this module); the
        state must be the one ``init_state`` (or a sweep) made for these X, y (ValueError
        otherwise)."""
        lifted.check_state(net, theta, state, X, y, self.name, multiplier=True)
        return admm_steps(net, theta, state, y, self.beta, self.gamma, self._ridge(X), self.loss,
                          self.output_steps, state.sweeps >= self.warm_start_sweeps)

    def sweep(self, net, theta, state, X, y):
        """One sweep over every block, then the multiplier: ``(theta, state)``, both new."""
        with lifted.quiet_overflow():  # the result is checked below
            _, _, theta_new, a, z, lam = lifted.last(self.steps(net, theta, state, X, y))
        lifted.check_finite_sweep("ADMM", theta_new, state.sweeps + 1,
                                  admm_advice(self.beta, self.gamma, self._ridge(X), X.dtype))
        return theta_new, lifted.LiftedState(a, z, lam, state.sweeps + 1, state.y)

    def sweep_flops(self, shapes):
        """:func:`~penaltyprop.methods.costs.admm_sweep_flops`."""
        return costs.admm_sweep_flops(shapes, self)

    def objective(self, net, theta, state, y):
        r"""The augmented Lagrangian :math:`F + \langle z_K, \lambda\rangle` (0-d array)."""
        lifted.check_objective_args(net, theta, state, y, self.name, multiplier=True)
        return self._measure(net, theta, state, y)[0]

    def _measure(self, net, theta, state, y):
        """``(L, act, lin)`` on checked arguments: :meth:`objective` and the residuals, from
        one product per layer (:func:`.lifted.objective`)."""
        L, act, lin = lifted.objective(net, theta, state.a, state.z, y, self.beta, self.gamma,
                                       self.loss, residuals=True)
        if state.lam is not None:
            L = L + (state.z[-1] * state.lam).sum(dtype="float64")
        return L, act, lin

    def diagnostics(self, net, theta, state, X, y) -> dict:
        r"""Host floats: the Lagrangian, the loss term, residuals, and the multiplier's KKT
        residual :math:`\|\lambda + \nabla\ell_y(z_K)\|` (None before the first update)."""
        lifted.check_state(net, theta, state, X, y, self.name, sweep=False, multiplier=True)
        xp = array_module(X)
        L, act, lin = self._measure(net, theta, state, y)
        zK = state.z[-1]
        kkt = None if state.lam is None else \
            to_float(xp.linalg.norm(state.lam + lifted.loss_sum_grad(zK, y, self.loss)))
        return {"sweeps": state.sweeps, "objective": to_float(L),
                "output_loss": to_float(lifted.loss_sum(zK, y, self.loss)),
                "multiplier_norm": 0.0 if state.lam is None else to_float(xp.linalg.norm(state.lam)),
                "kkt_residual": kkt, "residual_a": act, "residual_z": lin}
