r"""The settings of a training run, checked once, and where it starts: new or resumed.

:func:`make_config` checks every setting of :func:`penaltyprop.train.train` and returns them as
the JSON-able dict that checkpoints store; :func:`start` gives the parameters, optimizer state
and history of a new run or of the checkpoint it resumes (which must have the same settings,
data fingerprint included); :func:`device_data` moves the data to the device once.
"""
from __future__ import annotations

from .backend import get_backend, set_rng_state, to_device
from .checkpoint import CheckpointError, load_checkpoint
from .checks import FLOAT_DTYPES, check_dtype, check_int, check_labels, check_theta, check_X
from .data import batch_last, fingerprint, same_data
from .history import check_history, new_history
from .methods import Method
from .optim import OptState

DTYPES = FLOAT_DTYPES  # the dtypes a run computes in
CHECKPOINT = "checkpoint.npz"
#: the minibatch size of an oracle method when none is given (the paper's; all samples when
#: the training set is smaller)
DEFAULT_BATCH_SIZE = 500
HISTORY = "history.json"


def device_data(net, data, xp, dtype):
    """Train, validation and test arrays on the device, batch-last, cast, checked (the messages
    name ``X_train``, ``y_val``, ...)."""
    image_shape = tuple(data.image_shape) if len(net.input_shape) == 3 else None
    arrays = []
    for part in ("train", "val", "test"):
        X, y = getattr(data, f"X_{part}"), getattr(data, f"y_{part}")
        X, y = batch_last(to_device(X, xp, dtype), image_shape), to_device(y, xp)
        check_X(net, X, f"X_{part}")
        check_labels(net, y, X.shape[-1], like=X, name=f"y_{part}")
        arrays += [X, y]
    return arrays


class InexactResume(CheckpointError):
    """A lifted method's checkpoint without the method's state (an older version wrote it): it
    could only restart the per-sample variables, so the run would not continue exactly."""


def start(net, optimizer, method, config, theta, out_dir, resume, rng, xp, data=None):
    """``(theta, optimizer state, history, method state)`` of a new run, or of the checkpoint
    to resume; the method state is None, or a lifted method's saved ``(arrays, sweeps)``."""
    if resume:
        if theta is not None:
            raise ValueError("theta and resume=True exclude each other: a resumed run "
                             "continues from its checkpoint")
        if out_dir is None:
            raise ValueError("resume=True needs the out_dir of the run to continue")
        theta, state, history, saved = resume_from(out_dir / CHECKPOINT, config, rng, xp,
                                                   lifted=method.kind == "lifted", data=data)
        try:  # a tampered file: theta of another shape or dtype than the run's
            check_theta(net, theta, finite=False)  # a diverged run's theta is not finite
            if str(theta[0][0].dtype) != config["dtype"]:
                raise ValueError(f"theta has dtype {theta[0][0].dtype}, the run {config['dtype']}")
        except ValueError as err:
            raise CheckpointError(f"{out_dir / CHECKPOINT} is a damaged checkpoint: {err}") from None
        return theta, state, history, saved
    if out_dir is not None and (out_dir / CHECKPOINT).exists():
        raise ValueError(f"out_dir {out_dir} already holds {CHECKPOINT}: resume it "
                         f"(resume=True, --resume) or choose another out_dir")
    if theta is None:
        theta = net.init(seed=config["seed"], dtype=config["dtype"], backend=config["backend"])
    else:  # given parameters must be finite (only a resumed, diverged run's may not be)
        check_theta(net, theta, like=xp.zeros(1, dtype=config["dtype"]))
    state = OptState(0, {}) if optimizer is None else optimizer.init(theta)
    return theta, state, new_history(), None


def make_config(net, data, optimizer, method, *, batch_size, epochs, seed, dtype, backend,
                 eval_chunk):
    """Check every setting once and return them as a JSON-able dict."""
    if not isinstance(method, Method):
        raise ValueError(f"method must be a method object of penaltyprop.methods (e.g. "
                         f"pp.ProxProp(solver='exact')), got {method!r}")
    method.check_net(net)  # a network the method cannot train: an error now, not a divergence
    if method.kind == "lifted" and optimizer is not None:
        raise ValueError(f"method {method.label} updates theta itself by sweeps: pass "
                         f"optimizer=None")
    if method.kind == "oracle":
        for attr in ("init", "update", "config"):
            if not hasattr(optimizer, attr):
                raise ValueError(f"optimizer must come from penaltyprop.optim (sgd, adam), "
                                 f"got {optimizer!r}")
    for attr in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "image_shape"):
        if not hasattr(data, attr):
            raise ValueError(f"data must be a penaltyprop.data.Dataset, got {type(data).__name__}")
    shape = (data.n_features,) if len(net.input_shape) == 1 else tuple(data.image_shape)
    if tuple(net.input_shape) != shape:
        raise ValueError(f"the network takes inputs of shape {net.input_shape}, the data set "
                         f"{data.name!r} has samples of shape {shape}")
    if net.n_classes != data.n_classes:
        raise ValueError(f"the network has {net.n_classes} outputs, the data set "
                         f"{data.name!r} has {data.n_classes} classes")
    N = len(data.y_train)
    if method.kind == "lifted":  # every sweep uses all N samples: record that
        if batch_size is not None and check_int(batch_size, "batch_size", 1) != N:
            raise ValueError(f"batch_size={batch_size} does not apply to {method.label}: a "
                             f"lifted method sweeps all {N} training samples at once; leave "
                             f"batch_size out (None)")
        batch_size = N
    batch_size = min(DEFAULT_BATCH_SIZE, N) if batch_size is None else \
        check_int(batch_size, "batch_size", 1)  # the default fits any training set
    if batch_size > N:
        raise ValueError(f"batch_size={batch_size} is larger than the training set "
                         f"({N} samples)")
    dtype = check_dtype(dtype)  # "float32", np.float32 or numpy.dtype("float32")
    get_backend(backend)  # raises ValueError for an unknown or unavailable backend
    return {"net": repr(net), "data": {"name": data.name, "n_train": N,
                                       "n_val": len(data.y_val), "n_test": len(data.y_test),
                                       "fingerprint": fingerprint(data)},
            "method": method.config(),
            "optimizer": None if optimizer is None else optimizer.config,
            "batch_size": batch_size, "epochs": check_int(epochs, "epochs", 1),
            "seed": check_int(seed, "seed", 0), "dtype": str(dtype), "backend": backend,
            "eval_chunk": check_int(eval_chunk, "eval_chunk", 1)}


def legacy_config(config):
    """A checkpoint's config in today's form: checkpoints written before method objects
    (development versions of 0.1) name ``algorithm`` and the prox options at the top level;
    they map one to one to ``method.config()``, so that those runs can be resumed."""
    if "algorithm" not in config or "method" in config:
        return config
    config = dict(config)
    options = {k: config.pop(k, None) for k in ("algorithm", "tau_theta", "solver",
                                                 "cg_iterations", "cg_tol", "cg_variant",
                                                 "exact_system")}
    if options["algorithm"] == "backprop":
        config["method"] = {"method": "backprop"}
    else:
        cg = options["solver"] == "cg"
        config["method"] = {"method": "proxprop", "tau_theta": options["tau_theta"],
                            "solver": options["solver"],
                            **{k: options[k] for k in ("cg_iterations", "cg_tol", "cg_variant",
                                                       "exact_system")},
                            "cg_space": "auto" if cg else None}
    return config


#: settings a resumed run may change: extend it, move it, evaluate differently
FREE = ("epochs", "backend", "eval_chunk")


def config_differences(old, config, data=None):
    """``(keys, config)``: the settings (not :data:`FREE`) in which a checkpoint's config
    ``old`` differs from this run's ``config``, and ``config`` as compared (a checkpoint from
    before fingerprints compares without one; one written with an earlier fingerprint of the
    same ``data`` compares equal)."""
    old = legacy_config(old)
    recorded = old.get("data", {}).get("fingerprint") if isinstance(old.get("data"), dict) else None
    if recorded is None:  # a checkpoint from before fingerprints
        config = {**config, "data": {k: v for k, v in config["data"].items() if k != "fingerprint"}}
    elif data is not None and recorded != config["data"]["fingerprint"] and same_data(recorded, data):
        config = {**config, "data": {**config["data"], "fingerprint": recorded}}  # an earlier form
    return sorted(k for k in set(old) | set(config)
                  if k not in FREE and old.get(k) != config.get(k)), config


def resume_from(path, config, rng, xp, lifted=False, data=None):
    """Parameters, optimizer state, history and a lifted method's saved state from a
    checkpoint; restores ``rng``. The data must be the same (:func:`~penaltyprop.data.same_data`)."""
    if not path.exists():
        raise ValueError(f"no checkpoint to resume: {path} does not exist")
    ckpt = load_checkpoint(path, xp, history_keys=tuple(k for k in new_history()
                                                        if k != "diagnostics"))  # added later
    if lifted and ckpt["method_state"] is None:
        raise InexactResume(f"{path} holds no state of the lifted method (an older version "
                            f"wrote it): resuming would restart its per-sample variables and "
                            f"not continue the run exactly; delete it (or choose another "
                            f"out_dir) to start the run again")
    if ckpt["method_state"] is not None and ckpt["method_state"][1] != ckpt["opt_state"].step:
        raise CheckpointError(f"{path} is a damaged checkpoint: its method state counts "
                              f"{ckpt['method_state'][1]} sweeps, its run {ckpt['opt_state'].step}")
    old = legacy_config(ckpt["config"])
    differ, config = config_differences(old, config, data)
    if differ:
        detail = "; ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in differ)
        raise ValueError(f"cannot resume {path} with different settings ({detail})")
    try:
        check_history(ckpt["history"])
    except ValueError as err:
        raise CheckpointError(f"{path} is a damaged checkpoint: {err}") from None
    set_rng_state(rng, ckpt["rng_state"])
    history = ckpt["history"]
    history.setdefault("diagnostics", [])
    history["test_loss"] = history["test_acc"] = None  # recomputed after the last epoch
    return ckpt["theta"], ckpt["opt_state"], history, ckpt["method_state"]
