r"""``python -m penaltyprop bench``: what one training step costs, against the machine's own GEMMs.

One run measures, on one machine and backend, interleaved so that a neighbour's load
falls on all of them alike:

* the **GEMM peak**: the throughput of the matrix products a training step is made of,
  timed alone with the same shapes: for every layer the forward product
  :math:`W P` (Eq. 7), the gradient :math:`e P^\top` (Eqs. 25, 43) and the adjoint
  :math:`W^\top e` (Eqs. 10, 22);
* **one training step** per mode (forward pass, direction, plain SGD update): BackProp
  (the gradient by the chain rule), ProxProp with the exact prox (Eq. 44, the batch-space
  solve) and with k = 1, 3, 5, 10 CG iterations; median and spread over the
  repetitions, the analytic flop count, GFLOP/s against the peak, peak memory;
* a **breakdown**: the pieces of a step (forward, backward, Gram matrix, solve, one CG
  operator application, the CG's vector updates, the update) timed separately with the
  same shapes, and how they add up to each mode;
* the **targets** of issue 7 on the CPU (BackProp at >= 75 % of the peak, exact <= 1.25x
  BackProp, CG-k <= 1.1 (3 + 2k)/3 x BackProp), with the analytic flop ratio beside them.

Flop counts are analytic: a product of an (n, m) and an (m, K) matrix is 2nmK flops, a
Gram matrix :math:`P^\top P` (K x K, from m rows) K^2 m (BLAS syrk computes one triangle),
a Cholesky factorisation n^3/3, two triangular solves with r right-hand sides 2n^2 r
(:func:`~penaltyprop.backend.solve_spd`).
Elementwise work (bias, ReLU, softmax, the CG's vector updates, the update) counts zero:
it is memory-bound, and the table shows what it costs in time.

Usage::

    python -m penaltyprop bench                       # the paper's MLP, batch 500, float32
    python -m penaltyprop bench --model cnn --batch-size 100
    python -m penaltyprop bench --model 784-300-10 --modes backprop cg --cg-iterations 3
    python -m penaltyprop bench --backend cupy --json bench-gpu.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

from . import __version__
from .algorithms import _proxprop_direction
from .backend import (array_module, blas_info, cpu_spd_solver, get_backend, host_rng, peak_memory,
                      solve_spd, synchronize, to_device)
from .forward import _forward, _gradient
from .network import mlp
from .optim import sgd
from .prox import apply_At, apply_H, choose_system, prox_cg, prox_cg_batch

#: The paper's fully connected network (Section 5.1).
PAPER_MLP = (3072, 4000, 1000, 4000, 10)
MODES = ("backprop", "exact", "cg")
DTYPES = ("float32", "float64")
#: Images per epoch in the paper's CIFAR-10 training split (45,000 / 5,000 train / validation).
EPOCH_IMAGES = 45000
#: Targets of issue 7 on the CPU (paper MLP, batch 500, float32), ratios within one run.
BACKPROP_PEAK_FRACTION = 0.75
EXACT_RATIO = 1.25
CG_SLACK = 1.1
#: Issue 7's GPU target: a paper-MLP epoch (45,000 images) in under this many seconds, for
#: BackProp and exact ProxProp.
GPU_EPOCH_S = 0.5


@dataclass(frozen=True)
class Mode:
    """One way to compute a training step's direction."""

    label: str  # "BackProp", "exact", "CG-3"
    solver: str  # "backprop", "exact" or "cg"
    cg_iterations: int = 0


def make_modes(modes=MODES, cg_iterations=(1, 3, 5, 10)):
    """The modes to time, in table order: BackProp, exact, then CG-k for every k given."""
    out = []
    for name in modes:
        if name not in MODES:
            raise ValueError(f"modes must be drawn from {MODES}, got {name!r}")
    if "backprop" not in modes:
        raise ValueError("modes must include 'backprop': every ratio is taken against it")
    out.append(Mode("BackProp", "backprop"))
    if "exact" in modes:
        out.append(Mode("exact", "exact"))
    if "cg" in modes:
        for k in cg_iterations:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"cg_iterations must be integers >= 1, got {k!r}")
            out.append(Mode(f"CG-{k}", "cg", k))
    return out


def parse_model(text):
    """``"mlp"`` (the paper's MLP), ``"cnn"`` (Section 5.3) or widths such as ``"784-300-10"``.

    Returns the string ``"cnn"`` or a tuple of layer widths.
    """
    if text == "cnn":
        return "cnn"
    if text == "mlp":
        return PAPER_MLP
    try:
        sizes = tuple(int(s) for s in str(text).split("-"))
    except ValueError:
        sizes = ()
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"model must be 'mlp', 'cnn' or layer widths like '784-300-10', got {text!r}")
    return sizes


def build_problem(model=PAPER_MLP, batch_size=500, dtype="float32", backend="numpy", seed=0):
    """Network, PyTorch-default parameters and a random batch (X in [0, 1), random labels).

    Returns
    -------
    net, theta, X of shape (*input_shape, N), y of shape (N,), all on ``backend``.
    """
    if model == "cnn":
        from .conv import cnn

        net = cnn()
    else:
        net = mlp(list(model))
    xp = get_backend(backend)
    theta = net.init(seed=seed, dtype=dtype, backend=backend)
    rng = host_rng(seed + 1)
    X = to_device(rng.random((*net.input_shape, batch_size)).astype(dtype), xp)
    y = to_device(rng.integers(0, net.n_classes, size=batch_size), xp)
    return net, theta, X, y


def layer_shapes(net, theta, X):
    """``[(n_out, m, K), ...]``: every linear layer as the product (n_out, m) @ (m, K) of Eq. 7."""
    a, _ = _forward(net, theta, X)
    shapes = []
    for l, blk in enumerate(net.blocks):
        m, K = blk.phi.patches(a[l]).shape
        shapes.append((blk.phi.n_out, m, K))
    return shapes


# --------------------------------------------------------------------------- flop counts
def step_flops(shapes, mode, batch_size):
    r"""Analytic flops of one step's matrix work (elementwise work counts zero).

    BackProp: every layer's forward and gradient products, and the adjoint of every layer
    but the first (no error is sent back to the data). ProxProp: the same (the exact
    solver's last product :math:`-Y A^\top`, CG's first residual :math:`-\delta A^\top`
    replace the gradient), plus per hidden layer, exact: Gram matrix, Cholesky factorisation
    and two triangular solves of the smaller system (batch K x K with min(n, m+1)
    right-hand sides, as :func:`~penaltyprop.prox.prox_exact` associates the product, or
    primal (m+1) x (m+1) with n);
    CG-k: k applications of :math:`H = AA^\top + I/\tau_\theta`; matrix-free (parameter
    space) 4 n m K each; in batch coordinates (when K < m+1, as ``cg_space="auto"`` picks)
    2 n K^2 each, plus the Gram matrix once (its final :math:`C_D A^\top` replaces the gradient).
    """
    gemm = [2 * n * m * K for n, m, K in shapes]
    flops = 2 * sum(gemm) + sum(gemm[1:])  # forward + gradient, adjoints of layers 2..L-1
    for n, m, K in shapes[:-1]:  # the hidden (prox) layers
        if mode.solver == "exact":
            if choose_system(m, K) == "batch":
                flops += K * K * m + K**3 / 3 + 2 * K * K * min(n, m + 1)
            else:
                flops += m * m * K + (m + 1) ** 3 / 3 + 2 * (m + 1) ** 2 * n
        elif mode.solver == "cg" and choose_system(m, K) == "batch":
            flops += K * K * m + mode.cg_iterations * 2 * n * K * K
        elif mode.solver == "cg":
            flops += mode.cg_iterations * 4 * n * m * K
    return flops


def matrix_floor(shapes, mode, batch_size):
    """The analytic flop ratio of ``mode`` to BackProp: the best a step can do against it."""
    return step_flops(shapes, mode, batch_size) / step_flops(shapes, Mode("BackProp", "backprop"),
                                                             batch_size)


def target_ratio(mode):
    """Issue 7's bound on step(mode) / step(BackProp); None for BackProp itself."""
    if mode.solver == "exact":
        return EXACT_RATIO
    if mode.solver == "cg":
        return CG_SLACK * (3 + 2 * mode.cg_iterations) / 3
    return None


# --------------------------------------------------------------------------- timing
def _timed(xp, fn):
    """Wall-clock seconds of ``fn()``, with the device synchronised on both sides."""
    synchronize(xp)
    t0 = time.perf_counter()
    fn()
    synchronize(xp)
    return time.perf_counter() - t0


def _summary(times):
    """Median, min, max and quartiles of a list of seconds."""
    times = sorted(times)
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1],
            "q1_s": q[0], "q3_s": q[2], "times_s": times}


def _interleaved(xp, tasks, repetitions, say=None):
    """Time every task once per round, ``repetitions`` rounds after one warm-up round.

    Interleaving puts a neighbour's load on every task alike, so ratios within one run
    stay meaningful on a shared machine.
    """
    for fn in tasks.values():  # warm-up: first-touch allocations, BLAS thread start-up
        fn()
    times = {name: [] for name in tasks}
    for i in range(repetitions):
        if say:
            say(f"round {i + 1}/{repetitions}")
        for name, fn in tasks.items():
            times[name].append(_timed(xp, fn))
    return {name: _summary(ts) for name, ts in times.items()}


def gemm_tasks(xp, shapes, dtype, seed=0):
    """The forward, gradient and adjoint products of every layer, alone, with the step's layouts.

    Returns ``{name: (fn, flops, in_backprop)}``; the adjoint of layer 1 is not part of
    BackProp (nothing is sent back to the data) but still measures the machine.
    """
    rng = host_rng(seed + 2)

    def rand(*shape):
        return to_device(rng.random(shape, dtype="float64").astype(dtype), xp)

    tasks = {}
    for l, (n, m, K) in enumerate(shapes, start=1):
        W, P, E = rand(n, m), rand(m, K), rand(n, K)
        f = 2 * n * m * K
        tasks[f"layer {l} forward W P ({n}x{m} @ {m}x{K})"] = (lambda W=W, P=P: W @ P, f, True)
        tasks[f"layer {l} gradient e P^T"] = (lambda E=E, P=P: E @ P.T, f, True)
        tasks[f"layer {l} adjoint W^T e"] = (lambda W=W, E=E: W.T @ E, f, l > 1)
    return tasks


def breakdown_tasks(net, theta, X, y, tau_theta, optimizer, seed=0):
    r"""The pieces of a step, each alone with the step's shapes: ``{name: fn}``.

    Per hidden layer l (summed over the layers) with its real input :math:`a_{l-1}` and a
    random :math:`\delta`: the Gram matrix and the solve of the exact prox (as in
    :func:`~penaltyprop.prox.prox_exact`); one application of H, and whole CG solves
    with one and two iterations (:func:`~penaltyprop.prox.prox_cg`), whose difference is
    the cost of one iteration. Plus the forward pass, BackProp's direction (forward and
    backward) and the SGD update.
    """
    xp = array_module(X)
    a, _ = _forward(net, theta, X)
    rng = host_rng(seed + 3)
    _, grads = _gradient(net, theta, X, y)
    state = optimizer.init(theta)
    tasks = {"forward pass": lambda: _forward(net, theta, X),
             "BackProp direction (forward + backward)": lambda: _gradient(net, theta, X, y),
             "SGD update": lambda: optimizer.update(theta, grads, state)}
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
    tasks["exact: Gram matrix"] = each(gram)
    tasks["exact: solve (Cholesky + 2 triangular solves)"] = (  # each copies its B, as in
        lambda: [solve_spd(G, B) for G, B in zip(grams, rhss)])  # prox_exact
    def operator(P, D, grad, system, G):  # one application of H, in the space CG runs in
        return D @ G if system == "batch" else apply_H(grad[0], grad[1], P, tau_theta)

    def cg(k):  # a whole CG-k solve, as algorithms._prox_step_c runs it (cg_space="auto")
        def solve(P, D, grad, system):
            if system == "batch":
                return prox_cg_batch(P, D, tau_theta, k)
            return prox_cg(P, grad, tau_theta, k)
        return each(solve)

    tasks["CG: one application of H"] = (
        lambda: [operator(*layer, G) for layer, G in zip(layers, grams)])
    tasks["CG: CG-1 solve"] = cg(1)
    tasks["CG: CG-2 solve"] = cg(2)
    return tasks


def _model_of(mode, pieces):
    """Seconds that the pieces predict for ``mode``'s step, by piece."""
    m = {k: v["median_s"] for k, v in pieces.items()}
    backward = m["BackProp direction (forward + backward)"] - m["forward pass"]
    out = {"forward": m["forward pass"], "backward": backward}
    if mode.solver == "exact":
        out.update(gram=m["exact: Gram matrix"],
                   solve=m["exact: solve (Cholesky + 2 triangular solves)"])
    elif mode.solver == "cg":
        k, H = mode.cg_iterations, m["CG: one application of H"]
        iteration = m["CG: CG-2 solve"] - m["CG: CG-1 solve"]  # one more iteration
        setup = m["CG: CG-1 solve"] - iteration  # r_0, p_0, <r_0, r_0>
        out.update(cg_setup=setup, cg_operator=k * H, cg_vector_work=k * (iteration - H))
    out["update"] = m["SGD update"]
    return out


def issue7_targets(rows, backend):
    """Issue 7's targets, checked against the mode rows of one run (BackProp first).

    On every backend: BackProp at >= 75 % of the GEMM peak, exact <= 1.25x BackProp, CG-k
    <= 1.1 (3 + 2k)/3 x BackProp (set for the CPU). On CuPy also: an epoch of 45,000 images
    in under 0.5 s for BackProp and exact ProxProp (entries marked ``"gpu": True``).
    """
    targets = []
    bp = rows[0]
    targets.append({"claim": f"BackProp step at >= {BACKPROP_PEAK_FRACTION:.0%} of the GEMM peak",
                    "value": bp["fraction_of_peak"], "bound": BACKPROP_PEAK_FRACTION,
                    "holds": bp["fraction_of_peak"] >= BACKPROP_PEAK_FRACTION})
    for row in rows[1:]:
        k = row["cg_iterations"]
        claim = (f"exact step <= {EXACT_RATIO}x BackProp" if row["solver"] == "exact" else
                 f"CG-{k} step <= {CG_SLACK} x (3 + 2*{k})/3 = {row['target_ratio']:.2f}x BackProp")
        targets.append({"claim": claim, "value": row["ratio_to_backprop"],
                        "bound": row["target_ratio"], "matrix_floor": row["matrix_floor_ratio"],
                        "holds": row["ratio_to_backprop"] <= row["target_ratio"]})

    if backend == "cupy":  # the GPU target: the time of an epoch, BackProp and exact
        targets += [{"claim": f"{row['label']} epoch of {EPOCH_IMAGES:,} images < {GPU_EPOCH_S} s "
                              "on the GPU", "value": row["epoch_s"], "bound": GPU_EPOCH_S,
                     "holds": row["epoch_s"] < GPU_EPOCH_S, "gpu": True}
                    for row in rows if row["solver"] in ("backprop", "exact")]
    return targets


# --------------------------------------------------------------------------- the run
def machine_info():
    """CPU model, core counts, Python/NumPy versions, BLAS libraries, load average."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:  # not Linux
        pass
    np = get_backend("numpy")
    info = {"cpu": model, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform(), "blas": blas_info(),
            "spd_solve": cpu_spd_solver(), "penaltyprop": __version__}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    return info


def _maxrss_bytes():
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # kilobytes on Linux


def benchmark(model=PAPER_MLP, batch_size=500, dtype="float32", backend="numpy",
              repetitions=5, modes=MODES, cg_iterations=(1, 3, 5, 10), tau_theta=0.05,
              lr=0.05, seed=0, breakdown=True, memory=True, progress=None):
    """Run the benchmark; return everything as a JSON-able dict (see the module docstring).

    Parameters
    ----------
    model : ``PAPER_MLP``, a tuple of widths, or ``"cnn"`` (the network of Section 5.3).
    batch_size : int >= 1, N.
    dtype : ``"float32"`` or ``"float64"``.
    backend : ``"numpy"`` or ``"cupy"``.
    repetitions : int >= 1, timed rounds after one warm-up round.
    modes : subset of ``("backprop", "exact", "cg")``; ``cg_iterations`` the k of CG-k.
    tau_theta : the prox step size (the paper's 0.05; it does not change the cost).
    lr : SGD's learning rate (does not change the cost).
    breakdown, memory : also time the pieces / measure peak memory (one untimed step each).
    progress : optional callable taking a line of text.

    Returns
    -------
    dict with keys ``machine``, ``config``, ``peak``, ``modes``, ``breakdown``,
    ``targets``, ``maxrss_bytes``, ``wall_s``.
    """
    wall0 = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    say = progress or (lambda text: None)
    for name, v in (("batch_size", batch_size), ("repetitions", repetitions)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    mode_list = make_modes(modes, cg_iterations)
    xp = get_backend(backend)
    net, theta, X, y = build_problem(model, batch_size, dtype, backend, seed)
    shapes = layer_shapes(net, theta, X)
    optimizer = sgd(lr)
    say(f"{net!r}, batch {batch_size}, {dtype}, {backend}: {repetitions} rounds")

    def step_fn(mode):
        state = optimizer.init(theta)
        if mode.solver == "backprop":
            def step():
                _, d = _gradient(net, theta, X, y)  # grad J by the chain rule
                return optimizer.update(theta, d, state)[0]
        else:
            def step():
                _, d = _proxprop_direction(net, theta, X, y, tau_theta, mode.solver,
                                           mode.cg_iterations or None)
                return optimizer.update(theta, d, state)[0]
        return step

    gemms = gemm_tasks(xp, shapes, dtype, seed)
    tasks = {name: fn for name, (fn, _, _) in gemms.items()}
    tasks.update({mode.label: step_fn(mode) for mode in mode_list})
    say("steps and GEMMs: warm-up round")
    timed = _interleaved(xp, tasks, repetitions, say)
    gemm_flops = {name: (f, in_bp) for name, (_, f, in_bp) in gemms.items()}
    del gemms, tasks  # free the GEMM operands
    pieces = {}
    if breakdown:  # a phase of its own: its arrays would crowd the steps' memory
        say("breakdown: warm-up round")
        pieces = _interleaved(xp, breakdown_tasks(net, theta, X, y, tau_theta, optimizer, seed),
                              repetitions, say)

    gemm_rows = []
    for name, (f, in_bp) in gemm_flops.items():
        s = timed[name]
        gemm_rows.append({"name": name, "gflop": f / 1e9, "median_s": s["median_s"],
                          "gflops": f / s["median_s"] / 1e9, "in_backprop": in_bp})
    total_f = sum(r["gflop"] for r in gemm_rows)
    total_t = sum(r["median_s"] for r in gemm_rows)
    peak = {"gflops": total_f / total_t,
            "best_gflops": max(r["gflops"] for r in gemm_rows),
            "backprop_gemm_floor_s": sum(r["median_s"] for r in gemm_rows if r["in_backprop"]),
            "gemms": gemm_rows,
            "definition": "sum of the flops of every layer's forward, gradient and adjoint "
                          "product over the sum of their median times, each timed alone"}

    t_bp = timed["BackProp"]["median_s"]
    rows = []
    for mode in mode_list:
        s = timed[mode.label]
        f = step_flops(shapes, mode, batch_size)
        row = {"label": mode.label, "solver": mode.solver, "cg_iterations": mode.cg_iterations,
               **{k: v for k, v in s.items()}, "gflop": f / 1e9, "gflops": f / s["median_s"] / 1e9,
               "fraction_of_peak": f / s["median_s"] / 1e9 / peak["gflops"],
               "ratio_to_backprop": s["median_s"] / t_bp,
               "matrix_floor_ratio": matrix_floor(shapes, mode, batch_size),
               "target_ratio": target_ratio(mode),
               "epoch_s": s["median_s"] * math.ceil(EPOCH_IMAGES / batch_size)}
        if breakdown:
            row["model_s"] = _model_of(mode, pieces)
        if memory:
            _, row["peak_memory_bytes"] = peak_memory(xp, step_fn(mode))
        rows.append(row)

    targets = issue7_targets(rows, backend)

    machine = machine_info()
    if load_start is not None:  # 1, 5 and 15-minute load averages: others' work on the machine
        machine["load_average_start"] = load_start
        machine["load_average_end"] = list(os.getloadavg())
    config = {"model": "cnn" if model == "cnn" else list(model), "network": repr(net),
              "batch_size": batch_size, "dtype": dtype, "backend": backend,
              "repetitions": repetitions, "tau_theta": tau_theta, "lr": lr, "seed": seed,
              "layer_shapes": [list(s) for s in shapes]}
    return {"machine": machine, "config": config, "peak": peak, "modes": rows,
            "breakdown": pieces, "targets": targets, "maxrss_bytes": _maxrss_bytes(),
            "wall_s": time.perf_counter() - wall0}


# --------------------------------------------------------------------------- report
def _target_line(t):
    floor = f", flop floor {t['matrix_floor']:.2f}" if "matrix_floor" in t else ""
    return f"  [{'ok' if t['holds'] else 'MISSED'}] {t['claim']}: {t['value']:.2f}{floor}"


def format_report(result):
    """The human-readable tables of a :func:`benchmark` result."""
    mc, cfg, peak = result["machine"], result["config"], result["peak"]
    lines = [f"penaltyprop bench: {cfg['network']}",
             f"batch {cfg['batch_size']}, {cfg['dtype']}, backend {cfg['backend']}, "
             f"{cfg['repetitions']} timed rounds (interleaved, after a warm-up)",
             f"machine: {mc['cpu']}, {mc.get('cores_usable', mc['cpu_count'])} cores usable; "
             f"numpy {mc['numpy']}; load average {_load(mc)}",
             *([f"exact prox's Cholesky solve (CPU): {mc['spd_solve']}"]
               if cfg["backend"] == "numpy" and mc.get("spd_solve") else []),
             "",
             f"GEMM peak (layer products alone): {peak['gflops']:.1f} GFLOP/s "
             f"(best single product {peak['best_gflops']:.1f}); BackProp's products alone: "
             f"{peak['backprop_gemm_floor_s'] * 1e3:.1f} ms",
             "",
             f"{'mode':<9}{'median ms':>10}{'min':>8}{'max':>8}{'x BP':>7}{'floor':>7}"
             f"{'target':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'%peak':>7}{'mem MB':>8}{'epoch s':>9}"]
    for r in result["modes"]:
        target = f"{r['target_ratio']:.2f}" if r["target_ratio"] else ">=75%"
        mem = r.get("peak_memory_bytes")
        lines.append(
            f"{r['label']:<9}{r['median_s'] * 1e3:>10.1f}{r['min_s'] * 1e3:>8.1f}"
            f"{r['max_s'] * 1e3:>8.1f}{r['ratio_to_backprop']:>7.2f}{r['matrix_floor_ratio']:>7.2f}"
            f"{target:>8}{r['gflop']:>8.1f}{r['gflops']:>9.1f}{100 * r['fraction_of_peak']:>7.0f}"
            f"{(mem / 2**20 if mem is not None else float('nan')):>8.0f}{r['epoch_s']:>9.1f}")
    lines.append("x BP: median step / median BackProp step; floor: the analytic flop ratio; "
                 "epoch s: 45,000 images")
    if result["breakdown"]:
        lines += ["", "where the time goes (pieces timed alone, summed over the hidden layers):"]
        for name, s in result["breakdown"].items():
            lines.append(f"  {name:<54}{s['median_s'] * 1e3:>9.1f} ms")
        lines.append(f"  {'mode':<9}{'measured':>10}  pieces (ms)")
        for r in result["modes"]:
            model = r.get("model_s", {})
            parts = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in model.items())
            lines.append(f"  {r['label']:<9}{r['median_s'] * 1e3:>10.1f}  {parts} "
                         f"(sum {sum(model.values()) * 1e3:.1f})")
    paper_mlp = (cfg["model"] == list(PAPER_MLP) and cfg["batch_size"] == 500
                 and cfg["dtype"] == "float32")
    cpu = [t for t in result["targets"] if not t.get("gpu")]
    gpu = [t for t in result["targets"] if t.get("gpu")]
    lines += ["", "targets (issue 7; ratios within this run):"
              if paper_mlp and cfg["backend"] == "numpy" else
              "targets (issue 7 sets them for the paper MLP, batch 500, float32, on the CPU; "
              "shown here for reference only):"]
    lines += [_target_line(t) for t in cpu]
    if gpu:
        lines += ["targets on the GPU (issue 7, for the paper MLP, batch 500, float32):"
                  if paper_mlp else "targets on the GPU (issue 7 sets them for the paper MLP, "
                  "batch 500, float32; shown here for reference only):"]
        lines += [_target_line(t) for t in gpu]
    lines.append(f"wall time {result['wall_s']:.1f} s; max RSS "
                 f"{(result['maxrss_bytes'] or 0) / 2**20:.0f} MB")
    return "\n".join(lines)


def _load(mc):
    start, end = mc.get("load_average_start"), mc.get("load_average_end")
    if not start:
        return "n/a"
    return f"{start[0]:.2f} at start, {end[0]:.2f} at end" if end else f"{start[0]:.2f}"


# --------------------------------------------------------------------------- command line
def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def _model_arg(text):
    try:
        return parse_model(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser):
    """Add the ``bench`` options to an :class:`argparse.ArgumentParser` (or subparser)."""
    parser.add_argument("--model", type=_model_arg, default=PAPER_MLP,
                        help="'mlp' (the paper's 3072-4000-1000-4000-10, default), 'cnn' "
                             "(Section 5.3) or layer widths such as 784-300-10")
    parser.add_argument("--batch-size", type=_positive_int, default=500, help="N (default 500)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--repetitions", type=_positive_int, default=5,
                        help="timed rounds after one warm-up round (default 5)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="what to time (backprop is always included)")
    parser.add_argument("--cg-iterations", nargs="+", type=_positive_int, default=[1, 3, 5, 10],
                        help="k of the CG-k modes (default 1 3 5 10)")
    parser.add_argument("--tau-theta", type=float, default=0.05,
                        help="prox step size (default 0.05, the paper's; cost does not depend on it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="skip timing the pieces of a step")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the results here")
    return parser


def run(args) -> int:
    """Run the benchmark for parsed ``args``, print the report, write the JSON; return 0."""
    modes = list(dict.fromkeys(["backprop", *args.modes]))
    result = benchmark(model=args.model, batch_size=args.batch_size, dtype=args.dtype,
                       backend=args.backend, repetitions=args.repetitions, modes=modes,
                       cg_iterations=tuple(args.cg_iterations), tau_theta=args.tau_theta,
                       seed=args.seed, breakdown=args.breakdown,
                       progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def main(argv=None):
    """``python -m penaltyprop.bench [options]`` (also ``python -m penaltyprop bench``)."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="penaltyprop bench", description=__doc__.split("\n")[0].strip("r\"` ")))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
