r"""Where a step's time goes: its pieces timed alone, and how they add up to each method.

Per hidden layer l (summed over the layers), with its real input :math:`a_{l-1}` and a
random :math:`\delta`: the Gram matrix and the solve of the exact prox (with the layouts of
:func:`~penaltyprop.prox.prox_exact`); one application of H, and whole CG solves with one and
two iterations (:func:`~penaltyprop.prox.prox_cg`, :func:`~penaltyprop.prox.prox_cg_batch`),
whose difference is the cost of one iteration. Plus the forward pass, BackProp's direction
(forward and backward) and the optimizer's update. A method predicts its step from these
pieces itself (``method.step_model``); the bench shows the prediction beside the measurement.
"""
from __future__ import annotations

from ..backend import array_module, host_rng, to_device
from ..backend.linalg import solve_spd
from ..forward import forward
from ..methods import BackProp
from ..prox import apply_H, choose_system, prox_cg, prox_cg_batch
from ..transfer import apply_At

FORWARD = "forward pass"
BACKPROP = "BackProp direction (forward + backward)"
UPDATE = "SGD update"
GRAM = "exact: Gram matrix"
SOLVE = "exact: solve (Cholesky + 2 triangular solves)"
APPLY_H = "CG: one application of H"
CG1, CG2 = "CG: CG-1 solve", "CG: CG-2 solve"


def breakdown_tasks(net, theta, X, y, tau_theta, optimizer, seed=0):
    """The pieces of a step, each alone with the step's shapes: ``{name: fn}``."""
    xp = array_module(X)
    a, _ = forward(net, theta, X)
    rng = host_rng(seed + 3)
    backprop = BackProp()
    _, grads = backprop.direction(net, theta, X, y)
    state = optimizer.init(theta)
    tasks = {FORWARD: lambda: forward(net, theta, X, check=False),
             BACKPROP: lambda: backprop.direction(net, theta, X, y, check=False),
             UPDATE: lambda: optimizer.update(theta, grads, state)}
    layers = []
    for l in range(1, net.n_linear):  # hidden (prox) layers
        phi = net.blocks[l - 1].phi
        P = phi.patches(a[l - 1])  # (m, K)
        m, K = P.shape
        D = to_device(rng.standard_normal((phi.n_out, K)).astype(P.dtype), xp)  # delta rows
        grad = apply_At(D, P)
        layers.append((P, D, grad, choose_system(m, K)))

    def each(fn):
        return lambda: [fn(*layer) for layer in layers]

    def gram(P, D, grad, system):  # batch: A^T A (K x K); primal: P P^T, the bulk of A A^T
        G = P.T @ P if system == "batch" else P @ P.T
        G += 1 if system == "batch" else 0
        G[xp.diag_indices(G.shape[0])] += 1 / tau_theta
        return G

    grams = [gram(*layer) for layer in layers]

    def rhs(P, D, grad, system):  # the right-hand sides prox_exact solves for, in its layout
        m, K = P.shape
        if system == "primal":
            return grad[0].T  # (m, n_out); the bias column is left out
        # prox_exact solves for -delta and -A; the sign, applied while copying, costs the same
        if D.shape[0] <= m + 1:
            return D.T  # (K, n_out), one system per row of delta: Y = delta G^{-1}
        A = xp.ones((m + 1, K), dtype=P.dtype)
        A[:m] = P
        return A.T  # (K, m+1), one system per row of A = [P; 1^T]: Z = A G^{-1}

    rhss = [rhs(*layer) for layer in layers]
    tasks[GRAM] = each(gram)
    tasks[SOLVE] = lambda: [solve_spd(G, B) for G, B in zip(grams, rhss)]  # each copies its B

    def operator(P, D, grad, system, G):  # one application of H, in the space CG runs in
        return D @ G if system == "batch" else apply_H(grad[0], grad[1], P, tau_theta)

    def cg(k):  # a whole CG-k solve in the space textbook CG runs in (cg_space="auto")
        def solve(P, D, grad, system):
            if system == "batch":
                return prox_cg_batch(P, D, tau_theta, k)
            return prox_cg(P, grad, tau_theta, k)
        return each(solve)

    tasks[APPLY_H] = lambda: [operator(*layer, G) for layer, G in zip(layers, grams)]
    tasks[CG1] = cg(1)
    tasks[CG2] = cg(2)
    return tasks


#: the keys a method's ``step_model`` reads (:data:`penaltyprop.methods.base.PIECES`) -> the
#: pieces' names in the bench's table
PIECE_NAMES = {"forward": FORWARD, "backprop": BACKPROP, "update": UPDATE, "gram": GRAM,
               "solve": SOLVE, "apply_h": APPLY_H, "cg1": CG1, "cg2": CG2}


def model_of(method, pieces):
    """Seconds that the pieces predict for ``method``'s step, by part: BackProp's forward,
    backward and update, and the parts ``method.step_model`` names (None: no model for it)."""
    if method.kind != "oracle":
        return None
    m = {key: pieces[name]["median_s"] for key, name in PIECE_NAMES.items() if name in pieces}
    extra = method.step_model(m)
    if extra is None:
        return None
    return {"forward": m["forward"], "backward": m["backprop"] - m["forward"], **extra,
            "update": m["update"]}
