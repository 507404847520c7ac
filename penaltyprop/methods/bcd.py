r"""Proximal block coordinate descent (BCD): Zeng, Lau, Lin, Yao, ICML 2019; Lau et al. 2018.

**Objective.** The lifted objective F of :mod:`.lifted` (ProxProp's E with the class scores
:math:`z_K` a variable too, the loss summed over the samples):

.. math:: F = \ell_y(z_K) + \sum_{l=1}^{K}\frac{\rho}{2}\|z_l - W_l a_{l-1} - b_l\mathbf 1^\top\|^2
          + \sum_{l=1}^{K-1}\frac{\gamma}{2}\|a_l - \sigma(z_l)\|^2 .

This is ``output="merged"`` (the default). The sources (their Eq. 2.5 and notebooks) keep two
output variables, the output activation :math:`V_N` and the pre-activation :math:`U_N`,
coupled by the nonlinear constraint of the identity output map:
:math:`\ell_y(V_N) + \tfrac{\gamma}{2}\|V_N - U_N\|^2 + \tfrac{\rho}{2}\|U_N - W_N V_{N-1} - b_N\|^2`.
That is a different objective, not the same one written with one variable: minimising it over
:math:`V_N` leaves, for the squared loss, :math:`\tfrac{\gamma}{1+\gamma}\cdot\tfrac12\|U_N - Y\|^2`
(half the merged loss at gamma = 1), and :math:`V_N \ne U_N` at every finite gamma.
``output="split"`` runs the sources' form, with :math:`V_N` stored as ``state.a[K]``
(:math:`a_K`); the merged form is the default because it is F, the objective every other
lifted method of the package shares, and it has one variable less.
The default loss is softmax cross-entropy, the loss of every other method of the package, so
that the family is compared on one loss; ``loss="squared"`` is the sources' loss.

**One sweep** goes backwards, every block minimising F plus a proximal term
:math:`\tfrac{\alpha}{2}\|\cdot - \cdot^k\|^2` (none on a, as in the sources):

1. merged: :math:`z_K \leftarrow \arg\min \ell_y(z) + \tfrac{\rho}{2}\|z - \phi(\theta_K, a_{K-1})\|^2
   + \tfrac{\alpha}{2}\|z - z_K^k\|^2` (squared loss: closed form; cross-entropy: ``output_steps``
   gradient steps from :math:`z_K^k`, each a descent step, see :func:`.lifted.output_prox`).
   Split (the sources' order): :math:`a_K \leftarrow \arg\min \ell_y(a) + \tfrac{\gamma}{2}\|a - z_K\|^2
   + \tfrac{\alpha}{2}\|a - a_K^k\|^2`, then :math:`z_K \leftarrow \arg\min \tfrac{\gamma}{2}\|a_K - z\|^2
   + \tfrac{\rho}{2}\|z - \phi(\theta_K, a_{K-1})\|^2` (no proximal term, as in the sources);
2. for l = K .. 1:

   * :math:`\theta_l \leftarrow \arg\min \tfrac{\rho}{2}\|z_l - \phi(\theta, a_{l-1})\|^2
     + \tfrac{\alpha}{2}\|\theta - \theta_l^k\|^2`, which is ProxProp's Eq. 44 with
     :math:`\tau_\theta = \rho/\alpha` (:func:`penaltyprop.prox.prox_exact`, the batch-space solve when
     N < n_{l-1}+1). W and b are solved **jointly** (the exact block minimiser); the sources'
     notebook updates W with the old b and b with the old W (one Jacobi step on the same
     block), which lowers F less per sweep;
   * if l > 1: :math:`a_{l-1} \leftarrow (\rho W_l^\top W_l + \gamma I)^{-1}(\rho W_l^\top(z_l - b_l)
     + \gamma\sigma(z_{l-1}))` with the new :math:`\theta_l` (:func:`.lifted.a_step`);
   * if l > 1: :math:`z_{l-1} \leftarrow \arg\min \tfrac{\gamma}{2}\|a_{l-1} - \sigma(z)\|^2
     + \tfrac{\rho}{2}\|z - \phi(\theta_{l-1}, a_{l-2})\|^2 + \tfrac{\alpha}{2}\|z - z_{l-1}^k\|^2`,
     the ReLU prox by cases (:func:`.lifted.relu_prox`).

Every block step is an exact minimiser of F plus a non-negative proximal term that vanishes
at the old value (the output step a descent step on it), so F never increases, block by
block; the sources prove convergence to a critical point at rate O(1/k).

**Initialisation.** The training loop starts from ``net.init`` (PyTorch's default,
:math:`U(-1/\sqrt{n_{l-1}}, 1/\sqrt{n_{l-1}})` for W and b) and a forward pass, as every other
method; the sources' notebooks draw :math:`W \sim 0.01\,N(0, 1)` and set b = 0.1.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import to_float
from ..checks import check_choice, check_int, check_positive
from ..prox import choose_system, prox_exact
from . import costs, lifted
from .base import LiftedMethod
from .networks import RELU_MLP
from .settings import setting

#: the output block: one variable z_K (F), or the sources' a_K and z_K coupled by gamma
OUTPUTS = ("merged", "split")


def bcd_steps(net, theta, state, y, rho, gamma, alpha, loss, output_steps, exact_system="auto",
              output="merged"):
    r"""One backward BCD sweep as a generator that pauses after every block update.

    Yields ``(block, l, theta, a, z)`` with block in ``"a_out"`` (split output only),
    ``"z_out"``, ``"theta"``, ``"a"``, ``"z"`` and l the paper's layer index of the block
    (``a`` pauses name l-1's ``a_{l-1}`` as l-1). ``theta``, ``a``, ``z`` are new lists; no
    input array is modified. Each layer's product :math:`\phi(\theta_l, a_{l-1})` is formed
    once per sweep: the output block (or the z-step of layer l) and the theta-step of layer l
    that follows it share it, since neither :math:`\theta_l` nor :math:`a_{l-1}` changes
    between them.
    """
    K = net.n_linear
    theta, a, z = list(theta), list(state.a), list(state.z)
    advice = bcd_advice(rho, gamma, alpha, a[0].dtype)  # names the weights as given
    rho, gamma, alpha = lifted.in_dtype(a[0].dtype, rho, gamma, alpha)
    c = rho + alpha
    m = net.blocks[-1].phi(theta[K - 1], a[K - 1])  # phi(theta_K, a_{K-1})
    if output == "split":  # the sources' V_N (= a_K), then U_N (= z_K)
        v = (gamma * z[K] + alpha * a[K]) / (gamma + alpha)
        a[K] = lifted.output_prox(v, y, gamma + alpha, loss, output_steps, z0=a[K])
        yield "a_out", K, theta, a, z
        z[K] = (gamma * a[K] + rho * m) / (gamma + rho)  # argmin gamma/2||a_K - z||^2 + rho/2||z - m||^2
    else:  # 1. output block: prox of the loss with prox term alpha
        v = (rho * m + alpha * z[K]) / c  # rho/2||z - m||^2 + alpha/2||z - z^k||^2 = c/2||z - v||^2 + const
        z[K] = lifted.output_prox(v, y, c, loss, output_steps, z0=z[K])
    yield "z_out", K, theta, a, z
    for l in range(K, 0, -1):  # l = K .. 1; m = phi(theta_l, a_{l-1}), theta_l, a_{l-1} unchanged
        W, b = theta[l - 1]
        # theta_l: Eq. 44 with tau_theta = rho/alpha; delta = z^k - z^{k+1/2} in ProxProp's words
        delta = m - z[l]
        system = choose_system(W.shape[1], a[0].shape[1], exact_system)
        with lifted.explain_failure(f"BCD theta-step of layer {l}",
                                    {**advice, "solve": advice["theta"]}, a[l - 1], W):
            dW, db = prox_exact(a[l - 1], delta, rho / alpha, system)
        theta[l - 1] = (W + dW, b + db)
        yield "theta", l, theta, a, z
        if l == 1:
            break
        # a_{l-1}: (rho W_l^T W_l + gamma I) a = rho W_l^T (z_l - b_l) + gamma sigma(z_{l-1})
        with lifted.explain_failure(f"BCD a-step of layer {l - 1}",
                                    {**advice, "solve": advice["a"]}, theta[l - 1][0]):
            a[l - 1] = lifted.a_step(theta[l - 1], z[l], net.blocks[l - 2].sigma(z[l - 1]), rho,
                                     gamma)
        yield "a", l - 1, theta, a, z
        # z_{l-1}: ReLU prox of gamma/2||a - relu(z)||^2 + rho/2||z - m||^2 + alpha/2||z - z^k||^2
        m = net.blocks[l - 2].phi(theta[l - 2], a[l - 2])  # also the next theta-step's product
        v = (rho * m + alpha * z[l - 1]) / c
        z[l - 1] = lifted.relu_prox(a[l - 1], v, gamma, c)
        yield "z", l - 1, theta, a, z


def bcd_advice(rho, gamma, alpha, dtype):
    """What to change when a BCD block fails: its weights, or the precision."""
    return {"theta": f"its proximal weight alpha/rho = {alpha / rho:.3g} (tau_theta = rho/alpha "
                     f"= {rho / alpha:.3g}) is too small next to the layer's inputs in {dtype}: "
                     f"raise alpha or lower rho, or use float64",
            "a": f"its weight gamma/rho = {gamma / rho:.3g} is too small next to W^T W in "
                 f"{dtype}: raise gamma or lower rho, or use float64",
            "overflow": lifted.overflow_advice(dtype, rho=rho, gamma=gamma, alpha=alpha)}


@dataclass(frozen=True)
class BCD(LiftedMethod):
    r"""Proximal block coordinate descent on the lifted objective F (see the module docstring).

    Parameters
    ----------
    rho : float > 0
        Weight of the linear constraints :math:`z_l = \phi(\theta_l, a_{l-1})` (default 1).
    gamma : float > 0
        Weight of the nonlinear constraints :math:`a_l = \sigma(z_l)` (default 1).
    alpha : float > 0
        Weight of the proximal terms; the theta-step is ProxProp's prox with
        :math:`\tau_\theta = \rho/\alpha`. Defaults rho = gamma = 1, alpha = 5: the sources'
        MNIST notebooks.
    loss : {"cross_entropy", "squared"}
        The output loss: softmax cross-entropy (default, the package's loss) or squared
        (the sources').
    output_steps : int >= 1
        Gradient steps of the cross-entropy output block.
    exact_system : {"auto", "primal", "batch"}
        The system of Eq. 44.
    output : {"merged", "split"}
        ``"merged"`` (default: one output variable z_K, the objective F) or ``"split"`` (the
        sources': a_K and z_K coupled by :math:`\tfrac{\gamma}{2}\|a_K - z_K\|^2`).

    Examples
    --------
    A lifted method keeps per-sample variables in its state and trains by full-batch sweeps:

    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> method = pp.BCD()
    >>> net = pp.mlp([4, 3, 2])
    >>> theta = net.init(seed=0)
    >>> X = np.random.default_rng(0).random((4, 6))
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> state = method.init_state(net, theta, X, y)
    >>> before = method.diagnostics(net, theta, state, X, y)["objective"]
    >>> theta, state = method.sweep(net, theta, state, X, y)
    >>> after = method.diagnostics(net, theta, state, X, y)
    >>> after["sweeps"], bool(after["objective"] <= before)   # a sweep never raises F
    (1, True)
    """

    name = "bcd"
    networks = RELU_MLP  # the a-step solves with W^T W, the z-step is the ReLU prox
    rho: float = setting(1.0, "weight rho of the linear constraints z_l = W_l a_{l-1} + b_l")
    gamma: float = setting(1.0, "weight gamma of the constraints a_l = sigma(z_l)")
    alpha: float = setting(5.0, "weight alpha of the proximal terms (tau_theta = rho/alpha)")
    loss: str = setting("cross_entropy", "output loss: cross_entropy or squared")
    output_steps: int = setting(10, "gradient steps of the cross-entropy output block")
    exact_system: str = setting("auto", "system of Eq. 44: auto, primal or batch")
    output: str = setting("merged", "output block: merged (one variable z_K) or split (the "
                                    "sources' a_K and z_K coupled by gamma)")

    def __post_init__(self):
        for name in ("rho", "gamma", "alpha"):
            object.__setattr__(self, name, check_positive(getattr(self, name), name))
        check_choice(self.loss, "loss", lifted.LOSSES)
        object.__setattr__(self, "output_steps", check_int(self.output_steps, "output_steps", 1))
        check_choice(self.exact_system, "exact_system", ("auto", "primal", "batch"))
        check_choice(self.output, "output", OUTPUTS)

    @property
    def label(self) -> str:
        parts = [p for p in ("squared loss" if self.loss == "squared" else "",
                             "split output" if self.output == "split" else "") if p]
        return "BCD" + (f" ({', '.join(parts)})" if parts else "")

    def init_state(self, net, theta, X, y):
        """Activations from a forward pass (every constraint holds: F = the summed loss);
        with the split output also :math:`a_K = z_K`."""
        state = lifted.init_state(net, theta, X, y, self.name)
        if self.output == "split":
            return lifted.LiftedState(state.a + [state.z[-1]], state.z, None, state.sweeps,
                                      state.y)
        return state

    def steps(self, net, theta, state, X, y):
        """The sweep as a generator over its block updates (``bcd_steps`` in this module); the
        state must be the one ``init_state`` (or a sweep) made for these X, y (ValueError
        otherwise)."""
        lifted.check_state(net, theta, state, X, y, self.name, output_a=self.output == "split")
        return bcd_steps(net, theta, state, y, self.rho, self.gamma, self.alpha, self.loss,
                         self.output_steps, self.exact_system, self.output)

    def sweep(self, net, theta, state, X, y):
        """One backward sweep over every block: ``(theta, state)``, both new."""
        with lifted.quiet_overflow():  # the result is checked below
            _, _, theta_new, a, z = lifted.last(self.steps(net, theta, state, X, y))
        lifted.check_finite_sweep("BCD", theta_new, state.sweeps + 1,
                                  bcd_advice(self.rho, self.gamma, self.alpha, X.dtype))
        return theta_new, lifted.LiftedState(a, z, None, state.sweeps + 1, state.y)

    def sweep_flops(self, shapes):
        """:func:`~penaltyprop.methods.costs.bcd_sweep_flops`."""
        return costs.bcd_sweep_flops(shapes, self)

    def objective(self, net, theta, state, y):
        r"""F (0-d array) at the given variables; split output: the loss on :math:`a_K` plus
        :math:`\tfrac{\gamma}{2}\|a_K - z_K\|^2` in place of the loss on :math:`z_K`."""
        lifted.check_objective_args(net, theta, state, y, self.name,
                                    output_a=self.output == "split")
        return self._measure(net, theta, state, y)[0]

    def _measure(self, net, theta, state, y):
        """``(F, act, lin)`` on checked arguments: :meth:`objective` and the residuals, from
        one product per layer (:func:`.lifted.objective`)."""
        F, act, lin = lifted.objective(net, theta, state.a, state.z, y, self.rho, self.gamma,
                                       self.loss, residuals=True)
        if self.output == "split":
            a_K, z_K = state.a[-1], state.z[-1]
            F = F - lifted.loss_sum(z_K, y, self.loss) + lifted.loss_sum(a_K, y, self.loss) \
                + self.gamma / 2 * ((a_K - z_K) ** 2).sum()
        return F, act, lin

    def diagnostics(self, net, theta, state, X, y) -> dict:
        """Host floats: F, its loss term, and the residuals of both constraints per layer."""
        lifted.check_state(net, theta, state, X, y, self.name, sweep=False,
                           output_a=self.output == "split")
        F, act, lin = self._measure(net, theta, state, y)
        out = state.a[-1] if self.output == "split" else state.z[-1]
        return {"sweeps": state.sweeps, "objective": to_float(F),
                "output_loss": to_float(lifted.loss_sum(out, y, self.loss)),
                "residual_a": act, "residual_z": lin}
