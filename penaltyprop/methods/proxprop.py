r"""ProxProp as a first-order oracle (Algorithm 2, Section 5.3, Proposition 2).

The direction is :math:`(\theta^k - \theta^{k+1})/\tau` of Algorithm 2:
:math:`M_l^{-1}\nabla_{\theta_l}J` on the hidden layers (the prox step of Eq. 11) and
:math:`\nabla_{\theta_{L-1}}J` on the last layer; an optimizer with learning rate tau consumes
it like a gradient (plain SGD reproduces Algorithm 2).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..algorithms import prox_step_c, proxprop_direction, sweep
from ..prox import Prox
from . import costs
from .base import FamilyRun, OracleMethod
from .settings import setting

#: the number of CG iterations when solver="cg" and none is given (the paper's CG-3)
DEFAULT_CG_ITERATIONS = 3
#: the settings of step (c), :class:`penaltyprop.prox.Prox`'s fields
PROX_SETTINGS = ("tau_theta", "solver", "cg_iterations", "cg_tol", "cg_variant", "exact_system",
                 "cg_space")


@dataclass(frozen=True)
class ProxProp(OracleMethod):
    r"""ProxProp directions, the prox step of Eq. 11 solved exactly (Eq. 44) or by CG.

    Parameters
    ----------
    tau_theta : float > 0
        The prox step size of Eq. 11 (default 1, the paper's choice from Section 5.2 on;
        Fig. 2 used 0.05).
    solver : {"cg", "exact", "gradient"}
        How step (c) is solved: CG (default), exactly (Eq. 44), or by one explicit step.
    cg_iterations : int >= 1
        CG iterations per layer (solver="cg"; default 3).
    cg_tol, cg_variant, exact_system, cg_space
        As :class:`penaltyprop.prox.Prox` (None: the solver's default; an option of another
        solver is an error).

    Examples
    --------
    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> method = pp.ProxProp(tau_theta=0.05, solver="cg", cg_iterations=3)
    >>> method.label
    'ProxProp (cg3)'
    >>> net = pp.mlp([4, 3, 2])
    >>> X = np.random.default_rng(0).random((4, 6))
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> J, d = method.direction(net, net.init(seed=0), X, y)   # the loss and the direction
    >>> round(float(J), 4), [W.shape for W, b in d]
    (0.7257, [(3, 4), (2, 3)])
    >>> pp.ProxProp(tau_theta=-1)
    Traceback (most recent call last):
        ...
    ValueError: tau_theta must be a finite number > 0, got -1
    """

    name = "proxprop"
    default_tau = 1.0  # Section 5.1: tau = 1 for ProxProp with Nesterov momentum
    tau_theta: float = setting(1.0, "prox step size tau_theta of Eq. 11")
    solver: str = setting("cg", "prox solver: exact (Eq. 44), cg or gradient")
    cg_iterations: int = setting(None, f"CG iterations per layer (solver cg; default "
                                       f"{DEFAULT_CG_ITERATIONS})")
    cg_tol: float = setting(None, "CG relative tolerance for an early stop (solver cg)")
    cg_variant: str = setting(None, "textbook CG (default) or the authors' variant (solver cg)")
    exact_system: str = setting(None, "auto (default), primal or batch (solver exact)")
    cg_space: str = setting(None, "auto (default: the cheapest), parameter, primal or batch "
                                     "(solver cg)")

    def __post_init__(self):
        iterations = self.cg_iterations
        if self.solver == "cg" and iterations is None:
            iterations = DEFAULT_CG_ITERATIONS
        prox = Prox(self.tau_theta, self.solver, iterations, self.cg_tol, self.cg_variant,
                    self.exact_system, self.cg_space)  # checks every setting
        for name in PROX_SETTINGS:
            object.__setattr__(self, name, getattr(prox, name))

    @classmethod
    def family_run(cls):
        """Section 5.1's ProxProp: the exact prox with tau_theta = 0.05, Nesterov, tau = 1."""
        return FamilyRun(cls(tau_theta=0.05, solver="exact"), "nesterov", 1.0)

    @property
    def prox_settings(self) -> dict:
        """Step (c)'s settings (``PROX_SETTINGS`` in this module), without a subclass's own."""
        return {name: getattr(self, name) for name in PROX_SETTINGS}

    @property
    def prox(self) -> Prox:
        """Step (c)'s settings as :class:`penaltyprop.prox.Prox`."""
        return Prox(**self.prox_settings)

    @property
    def label(self) -> str:
        if self.solver != "cg":
            return f"{type(self).__name__} ({self.solver})"
        suffix = ", authors' CG" if self.cg_variant == "authors" else ""
        return f"{type(self).__name__} (cg{self.cg_iterations}{suffix})"

    @property
    def key(self) -> str:
        """``"exact"``, ``"cg3"``, ...; a subclass's key starts with its own name."""
        key = self.solver if self.solver != "cg" else f"cg{self.cg_iterations}"
        return key if self.name == ProxProp.name else f"{self.name}-{key}"

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: :func:`penaltyprop.proxprop_direction` with these settings."""
        return proxprop_direction(net, theta, X, y, **self.prox_settings, check=check,
                                  return_loss=True)

    def penalty_sweep(self, net, theta, X, y, tau):
        """Algorithm 2's sweep with step tau (:func:`penaltyprop.algorithms.sweep`)."""
        return sweep(net, theta, X, y, tau, prox_step_c(self.prox, tau))

    def extra_flops(self, shapes):
        """The prox solves of the hidden layers (:func:`~penaltyprop.methods.costs.proxprop_extra_flops`)."""
        return costs.proxprop_extra_flops(shapes, self)

    def step_model(self, pieces):
        """The prox pieces of a step: Gram and solve, or CG's set-up, operator, vectors."""
        if self.solver == "exact":
            return {"gram": pieces["gram"], "solve": pieces["solve"]}
        if self.solver == "cg":
            k, H = self.cg_iterations, pieces["apply_h"]
            iteration = pieces["cg2"] - pieces["cg1"]  # one more iteration
            setup = pieces["cg1"] - iteration  # r_0, p_0, <r_0, r_0>
            return {"cg_setup": setup, "cg_operator": k * H, "cg_vector_work": k * (iteration - H)}
        return {}
