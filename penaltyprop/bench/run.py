r"""One bench run: the problem, the timed steps and GEMMs, the breakdown, as a JSON-able dict."""
from __future__ import annotations

import math
import time

from ..backend import get_backend, host_rng, to_device
from ..backend.instruments import peak_memory
from ..checks import FLOAT_DTYPES, check_choice, check_int
from ..forward import forward
from ..memory import check_memory, run_bytes
from ..model_spec import PAPER_MLP, build_model, parse_model
from ..optim import sgd
from .breakdown import breakdown_tasks, model_of
from .flops import matrix_floor, step_flops
from .load import check_load, competing_load
from .modes import CG_ITERATIONS, MODES, TAU_THETA, make_modes, modes_of
from .timing import gemm_tasks, interleaved, load_average, machine_info, maxrss_bytes, peak_of

DTYPES = FLOAT_DTYPES
#: Images per epoch in the paper's CIFAR-10 training split (45,000 / 5,000 train / validation).
EPOCH_IMAGES = 45000


def build_problem(model=PAPER_MLP, batch_size=500, dtype="float32", backend="numpy", seed=0):
    """Network, PyTorch-default parameters and a random batch (X in [0, 1), random labels).

    Parameters
    ----------
    model : str or spec
        A model string or spec (:func:`penaltyprop.model_spec.parse_model`): widths,
        ``"mlp"``, ``"cnn"`` or ``"cnn-authors"``.

    Returns
    -------
    net, theta, X, y
        X of shape (*input_shape, N), y of shape (N,), all on ``backend``.
    """
    net, _ = build_model(model)
    xp = get_backend(backend)
    theta = net.init(seed=seed, dtype=dtype, backend=backend)
    rng = host_rng(seed + 1)
    X = to_device(rng.random((*net.input_shape, batch_size)).astype(dtype), xp)
    y = to_device(rng.integers(0, net.n_classes, size=batch_size), xp)
    return net, theta, X, y


def layer_shapes(net, theta, X):
    """``[(n_out, m, K), ...]``: every linear layer as the product (n_out, m) @ (m, K) of Eq. 7."""
    a, _ = forward(net, theta, X)
    return [(blk.phi.n_out, *blk.phi.patches(a[l]).shape) for l, blk in enumerate(net.blocks)]


def _check(batch_size, repetitions, dtype):
    check_int(batch_size, "batch_size", 1)
    check_int(repetitions, "repetitions", 1)
    check_choice(dtype, "dtype", DTYPES)


def benchmark(model=PAPER_MLP, batch_size=500, dtype="float32", backend="numpy",
              repetitions=5, modes=MODES, cg_iterations=CG_ITERATIONS, tau_theta=TAU_THETA,
              methods=None, lr=0.05, seed=0, breakdown=True, memory=True, progress=None,
              load=0):
    """Run the benchmark; return everything as a JSON-able dict (see :mod:`penaltyprop.bench`).

    Parameters
    ----------
    model : str
        Widths, ``"mlp"`` (the paper's MLP, default), ``"cnn"`` (Section 5.3) or
        ``"cnn-authors"`` (the CNN of the authors' code).
    batch_size : int >= 1
        N.
    dtype : {"float32", "float64"}
        The floating dtype.
    backend : {"numpy", "cupy"}
        The array backend.
    repetitions : int >= 1
        Timed rounds after one warm-up round.
    modes : subset of ("backprop", "exact", "cg")
        The preset modes to time.
    cg_iterations : int
        The k of CG-k.
    tau_theta : float
        The modes' prox step size (the paper's 0.05; it does not change the cost).
    methods : list of Method, optional
        Method objects, timed instead of the preset modes (after BackProp, which every ratio
        is taken against): an oracle method's step (forward, direction, update) on the
        N = ``batch_size`` samples, or a lifted method's full-batch sweep over them (from the
        state of :meth:`init_state`, the same every round). Both are one epoch-equivalent of
        the N samples, against one BackProp step on all of them.
    lr : float
        SGD's learning rate (does not change the cost).
    breakdown, memory : bool
        Also time the pieces / measure peak memory (one untimed step each).
    progress : callable, optional
        Takes a line of text.
    load : int >= 0
        Competing single-threaded GEMM processes that run during the timings
        (:func:`.load.competing_load`); 0: none.

    Returns
    -------
    dict
        With keys ``machine``, ``config``, ``peak``, ``modes``, ``breakdown``,
        ``maxrss_bytes``, ``wall_s``.
    """
    wall0 = time.perf_counter()
    load_start = load_average()
    say = progress or (lambda text: None)
    _check(batch_size, repetitions, dtype)
    check_load(load)  # an integer in 0 .. LOAD_PER_CORE x cores
    mode_list = make_modes(modes, cg_iterations, tau_theta) if methods is None \
        else modes_of(methods)
    xp = get_backend(backend)
    spec, _ = build_model(model)  # the shapes only: memory is checked before any array
    check_memory(run_bytes(spec, batch_size, batch_size, dtype,
                           lifted=any(m.method.kind == "lifted" for m in mode_list),
                           prox=any(hasattr(m.method, "tau_theta") for m in mode_list),
                           eval_chunk=0), xp, f"the bench (batch {batch_size})")
    net, theta, X, y = build_problem(model, batch_size, dtype, backend, seed)
    for mode in mode_list:  # a network a method cannot train: an error before any timing
        mode.method.check_net(net)
    shapes = layer_shapes(net, theta, X)
    optimizer = sgd(lr)
    say(f"{net!r}, batch {batch_size}, {dtype}, {backend}: {repetitions} rounds")

    def step_fn(method):  # forward pass, direction, plain SGD update; or a sweep
        if method.kind == "lifted":
            start = method.init_state(net, theta, X, y)
            return lambda: method.sweep(net, theta, start, X, y)[0]
        state = optimizer.init(theta)

        def step():
            _, d = method.direction(net, theta, X, y, check=False)
            return optimizer.update(theta, d, state)[0]
        return step

    gemms = gemm_tasks(xp, shapes, dtype, seed)
    tasks = {name: fn for name, (fn, _, _) in gemms.items()}
    tasks.update({mode.label: step_fn(mode.method) for mode in mode_list})
    say("steps and GEMMs: warm-up round" + (f", {load} competing processes" if load else ""))
    with competing_load(load):
        timings = interleaved(xp, tasks, repetitions, say)
    peak = peak_of({name: (f, in_bp) for name, (_, f, in_bp) in gemms.items()}, timings)
    del gemms, tasks  # free the GEMM operands
    pieces = {}
    if breakdown:  # a phase of its own: its arrays would crowd the steps' memory
        say("breakdown: warm-up round")
        pieces = interleaved(xp, breakdown_tasks(net, theta, X, y, tau_theta, optimizer, seed),
                             repetitions, say)

    t_bp = timings[mode_list[0].label]["median_s"]
    rows = []
    for mode in mode_list:
        s, method = timings[mode.label], mode.method
        params = method.get_params()
        f = step_flops(shapes, method)
        gflops = None if f is None else f / s["median_s"] / 1e9
        floor = matrix_floor(shapes, method)
        ratio = s["median_s"] / t_bp
        row = {"label": mode.label, "method": method.config(),
               # solver and cg_iterations as earlier runs' JSON has them
               "solver": params.get("solver", method.name),
               "cg_iterations": params.get("cg_iterations") or 0,
               **s, "gflop": None if f is None else f / 1e9, "gflops": gflops,
               "fraction_of_peak": None if f is None else gflops / peak["gflops"],
               "kind": method.kind,
               "ratio_to_backprop": ratio, "matrix_floor_ratio": floor,
               "ratio_to_floor": None if floor is None else ratio / floor,
               # a lifted method's sweep over 45,000 images is no multiple of this one
               "epoch_s": None if method.kind == "lifted" else
               s["median_s"] * math.ceil(EPOCH_IMAGES / batch_size)}
        if breakdown:
            row["model_s"] = model_of(method, pieces)
        if memory:
            _, row["peak_memory_bytes"] = peak_memory(xp, step_fn(method))
        rows.append(row)

    machine = machine_info()
    if load_start is not None:
        machine["load_average_start"] = load_start
        machine["load_average_end"] = load_average()
    spec = parse_model(model)
    config = {"model": spec if isinstance(spec, str) else list(spec), "network": repr(net),
              "batch_size": batch_size, "dtype": dtype, "backend": backend,
              "repetitions": repetitions, "tau_theta": tau_theta, "lr": lr, "seed": seed,
              "load": load, "layer_shapes": [list(s) for s in shapes]}
    return {"machine": machine, "config": config, "peak": peak, "modes": rows,
            "breakdown": pieces, "maxrss_bytes": maxrss_bytes(),
            "wall_s": time.perf_counter() - wall0}
