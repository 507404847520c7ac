"""The training loop is the oracle plus the optimizer, reproducible, recording what the paper plots.

Claims tested here:
* one epoch with a single full-data minibatch is exactly one optimizer step on the oracle's
  direction (BackProp: grad J; ProxProp: pp.proxprop_direction), so Section 5.3's
  "ProxProp as a first-order oracle" is what the loop runs;
* the recorded training/validation/test losses are J(theta; X, y) over the full sets
  (Eq. 1), evaluated in chunks without changing the result;
* the same seed, data and settings give bit-identical runs; a run of 2 epochs equals a run
  of 1 epoch resumed from its checkpoint for 1 more, bit for bit;
* a non-finite loss ends the run as diverged without raising (Table 1's "-");
* checkpoints load with allow_pickle=False and are written atomically;
* bad settings raise ValueError naming them.
"""
import json

import numpy as np
import pytest
from helpers import copy_params, max_abs_diff, rewrite_checkpoint

import penaltyprop as pp
from penaltyprop import optim
from penaltyprop.backend import to_device, to_host
from penaltyprop.data import batch_last, load_dataset
from penaltyprop.train import CHECKPOINT, HISTORY, train

SIZES = [64, 12, 10]


@pytest.fixture(scope="module")
def digits():
    """200 training, 50 validation and 50 test digits in float64."""
    return load_dataset("digits", subset=200, dtype="float64")


def _net():
    return pp.mlp(SIZES)


def _batch_last(ds, xp, part="train"):
    X, y = getattr(ds, f"X_{part}"), getattr(ds, f"y_{part}")
    return batch_last(to_device(X, xp)), to_device(y, xp)


def _series_equal(h1, h2):
    """Every recorded loss and accuracy equal (times aside: they are wall-clock)."""
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "batch_loss")
    return all(h1[k] == h2[k] for k in keys) and (h1["test_loss"], h1["test_acc"], h1["steps"]) \
        == (h2["test_loss"], h2["test_acc"], h2["steps"])


# ------------------------------------------------------------------- the loop = oracle + optimizer
@pytest.mark.parametrize("algorithm,prox", [
    ("backprop", {}),
    ("proxprop", {"solver": "exact", "tau_theta": 0.3}),
    ("proxprop", {"solver": "cg", "cg_iterations": 2, "tau_theta": 0.3}),
])
def test_full_batch_epochs_are_optimizer_steps_on_the_oracle(backend, digits, algorithm, prox):
    xp = pp.backend.get_backend(backend)
    net = _net()
    theta0 = net.init(seed=3, dtype="float64", backend=backend)
    before = copy_params(theta0)
    opt = optim.sgd(0.5, momentum=0.9, nesterov=True)
    result = train(net, digits, opt, pp.make_method(algorithm, **prox), batch_size=200, epochs=2,
                   dtype="float64", backend=backend, theta=theta0, progress=False)
    X, y = _batch_last(digits, xp)
    theta, state = theta0, opt.init(theta0)
    for _ in range(2):
        if algorithm == "backprop":
            d = pp.gradient(net, theta, X, y)
        else:
            d = pp.proxprop_direction(net, theta, X, y, **prox)
        theta, state = opt.update(theta, d, state)
    # The loop's minibatch is X with its columns shuffled: a mean over the same samples in
    # another order, equal up to float64 rounding of the sums (~1e-16 relative), which the
    # two steps and the prox solves amplify by at most a few hundred.
    assert max_abs_diff(result.theta, theta) < 1e-12
    assert max_abs_diff(theta0, before) == 0  # the initial parameters were not modified
    assert result.history["steps"] == 2 and result.opt_state.step == 2


def test_plain_sgd_epoch_with_proxprop_is_algorithm_2(backend, digits):
    xp = pp.backend.get_backend(backend)
    net = _net()
    result = train(net, digits, optim.sgd(0.7), pp.ProxProp(solver="exact", tau_theta=0.05),
                   batch_size=200, epochs=1, seed=1, dtype="float64",
                   backend=backend, progress=False)
    X, y = _batch_last(digits, xp)
    expected = pp.proxprop(net, net.init(seed=1, dtype="float64", backend=backend), X, y,
                           tau=0.7, tau_theta=0.05, solver="exact")
    assert max_abs_diff(result.theta, expected) < 1e-12  # as above: rounding of reordered sums


# --------------------------------------------------------------------------- what is recorded
def test_history_holds_the_full_batch_losses(backend, digits):
    xp = pp.backend.get_backend(backend)
    net = _net()
    records = []
    result = train(net, digits, optim.adam(1e-2), batch_size=64, epochs=3, dtype="float64",
                   backend=backend, eval_chunk=7, progress=False, on_epoch=records.append)
    h = result.history
    assert h["epoch"] == [0, 1, 2, 3] and len(records) == 4
    assert h["batch_loss"][0] is None and all(b > 0 for b in h["batch_loss"][1:])
    assert h["steps"] == 3 * 4  # ceil(200 / 64) = 4 minibatches per epoch, the last of 8
    assert h["time"] == pytest.approx(np.cumsum(h["epoch_time"]).tolist(), rel=1e-12)
    assert all(t >= 0 for t in h["epoch_time"] + h["eval_time"])
    for part, loss, acc in (("train", h["train_loss"][-1], h["train_acc"][-1]),
                            ("val", h["val_loss"][-1], h["val_acc"][-1]),
                            ("test", h["test_loss"], h["test_acc"])):
        X, y = _batch_last(digits, xp, part)
        # eval_chunk=7 sums J over chunks of 7 columns: the same mean up to float64 rounding
        assert loss == pytest.approx(float(to_host(pp.loss(net, result.theta, X, y))), rel=1e-12)
        scores = pp.forward(net, result.theta, X)[1][-1]
        assert acc == float(to_host((scores.argmax(axis=0) == y).mean()))
    assert h["train_loss"][-1] < h["train_loss"][0]  # training trains
    assert not h["diverged"] and h["diverged_epoch"] is None
    assert records[-1]["train_loss"] == h["train_loss"][-1]


def test_float32_is_the_default_and_float64_an_option(digits):
    net = _net()
    r32 = train(net, digits, optim.sgd(0.1), batch_size=100, epochs=1, progress=False)
    r64 = train(net, digits, optim.sgd(0.1), batch_size=100, epochs=1, dtype="float64",
                progress=False)
    assert r32.theta[0][0].dtype == np.float32 and r64.theta[0][0].dtype == np.float64
    # Same seed, same steps: float32 tracks float64 to its own precision (~1e-7 x growth).
    assert max_abs_diff(r32.theta, r64.theta) < 1e-4


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_gives_bit_identical_runs_and_another_seed_does_not(digits):
    net = _net()

    def run(seed):
        return train(net, digits, optim.sgd(0.2, momentum=0.95, nesterov=True),
                     pp.ProxProp(solver="cg", cg_iterations=3), batch_size=32,
                     epochs=2, seed=seed, progress=False)

    a, b, c = run(0), run(0), run(1)
    assert max_abs_diff(a.theta, b.theta) == 0 and _series_equal(a.history, b.history)
    assert max_abs_diff(a.theta, c.theta) > 0


@pytest.mark.parametrize("make,algorithm,prox", [
    (lambda: optim.sgd(0.5, momentum=0.95, nesterov=True), "proxprop",
     {"solver": "exact", "tau_theta": 0.2}),
    (lambda: optim.adam(1e-2, weight_decay=1e-3), "backprop", {}),
])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, digits, make, algorithm,
                                                              prox):
    net = _net()
    kw = dict(method=pp.make_method(algorithm, **prox), batch_size=48, seed=5, progress=False)
    whole = train(net, digits, make(), epochs=2, out_dir=tmp_path / "whole", **kw)
    train(net, digits, make(), epochs=1, out_dir=tmp_path / "part", **kw)
    resumed = train(net, digits, make(), epochs=2, out_dir=tmp_path / "part", resume=True, **kw)
    assert max_abs_diff(resumed.theta, whole.theta) == 0
    assert resumed.opt_state.step == whole.opt_state.step == 10  # ceil(200/48) = 5 per epoch
    for slot, params in whole.opt_state.slots.items():
        assert max_abs_diff(resumed.opt_state.slots[slot], params) == 0
    assert _series_equal(resumed.history, whole.history)
    # and the files on disk say the same
    saved = json.loads((tmp_path / "part" / HISTORY).read_text())
    assert saved["train_loss"] == whole.history["train_loss"]


# --------------------------------------------------------------------------- divergence
def test_non_finite_loss_ends_the_run_as_diverged(tmp_path, digits):
    # lr = 1e30: the first step multiplies the weights by ~1e30, the logits overflow float32.
    result = train(_net(), digits, optim.sgd(1e30), batch_size=50, epochs=3, out_dir=tmp_path,
                   progress=False, check_every=1)
    h = result.history
    assert result.diverged and h["diverged_epoch"] == 1
    assert "non-finite" in h["diverged_reason"]
    assert h["epoch"] == [0] and h["test_loss"] is None
    assert h["steps"] <= 2  # check_every=1: stopped right after the first non-finite loss
    assert json.loads((tmp_path / HISTORY).read_text())["diverged"] is True
    # resuming a diverged run does nothing more
    again = train(_net(), digits, optim.sgd(1e30), batch_size=50, epochs=3, out_dir=tmp_path,
                  resume=True, progress=False, check_every=1)
    assert again.diverged and again.history["steps"] == h["steps"]


def test_failed_prox_solve_is_recorded_as_divergence(digits):
    # A huge step makes the activations explode; in float32 the Gram matrix of the exact
    # prox loses positive definiteness (or the loss overflows) - a result, not a crash.
    result = train(_net(), digits, optim.sgd(1e4, momentum=0.9),
                   pp.ProxProp(solver="exact", tau_theta=10.0), batch_size=50, epochs=5,
                   progress=False)
    assert result.diverged and result.history["diverged_reason"]


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_is_plain_npz_written_atomically(tmp_path, digits):
    net = _net()
    result = train(net, digits, optim.sgd(0.1, momentum=0.5), batch_size=100, epochs=1,
                   out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT, HISTORY]  # no temp files
    with np.load(tmp_path / CHECKPOINT, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        assert np.array_equal(f["theta_0_W"], result.theta[0][0])
        assert np.array_equal(f["opt_momentum_1_b"], result.opt_state.slots["momentum"][1][1])
    assert meta["config"]["method"] == {"method": "backprop"} and meta["opt_step"] == 2
    assert meta["history"]["train_loss"] == result.history["train_loss"]


def test_checkpoint_misuse_raises(tmp_path, digits):
    net = _net()
    kw = dict(batch_size=100, progress=False)
    with pytest.raises(ValueError, match="no checkpoint"):
        train(net, digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, resume=True, **kw)
    train(net, digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **kw)
    with pytest.raises(ValueError, match="already holds"):
        train(net, digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **kw)
    with pytest.raises(ValueError, match="different settings.*optimizer"):
        train(net, digits, optim.sgd(0.2), epochs=2, out_dir=tmp_path, resume=True, **kw)
    with pytest.raises(ValueError, match="out_dir"):
        train(net, digits, optim.sgd(0.1), epochs=2, resume=True, **kw)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CHECKPOINT).write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a penaltyprop checkpoint"):
        train(net, digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path / "bad", resume=True, **kw)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name,settings,bad", [
    ("newton", {}, "method"),
    ("backprop", {"solver": "cg"}, "solver"),
    ("backprop", {"tau_theta": 0.5}, "tau_theta"),
    ("proxprop", {"solver": "exact", "cg_iterations": 3}, "cg_iterations"),
    ("proxprop", {"solver": "exact", "cg_iterations": -5}, "cg_iterations"),
    ("proxprop", {"solver": "cg", "exact_system": "batch"}, "exact_system"),
    ("proxprop", {"tau_theta": -1.0}, "tau_theta"),
    ("proxprop", {"solver": "lbfgs"}, "solver"),
])
def test_bad_method_settings_raise_value_error_naming_them(name, settings, bad):
    """The method object is the one place its settings are checked (train takes the object)."""
    with pytest.raises(ValueError, match=bad):
        pp.make_method(name, **settings)


def test_train_takes_a_method_object(digits):
    with pytest.raises(ValueError, match="method must be a method object"):
        train(_net(), digits, optim.sgd(0.1), "proxprop", batch_size=100, progress=False)


@pytest.mark.parametrize("kwargs,name", [
    ({"batch_size": 201}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"seed": -1}, "seed"),
    ({"dtype": "float16"}, "dtype"),
    ({"backend": "jax"}, "backend"),
])
def test_bad_settings_raise_value_error_naming_them(digits, kwargs, name):
    kw = dict(batch_size=100, progress=False)
    kw.update(kwargs)
    with pytest.raises(ValueError, match=name):
        train(_net(), digits, optim.sgd(0.1), **kw)


def test_network_must_fit_the_data(digits):
    with pytest.raises(ValueError, match="inputs of shape"):
        train(pp.mlp([32, 10]), digits, optim.sgd(0.1), batch_size=100, progress=False)
    with pytest.raises(ValueError, match="classes"):
        train(pp.mlp([64, 5]), digits, optim.sgd(0.1), batch_size=100, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train(_net(), digits, "sgd", batch_size=100, progress=False)


def test_a_checkpoint_from_before_method_objects_resumes(tmp_path, digits):
    """Checkpoints of 0.1 name ``algorithm`` and the prox options at the top of their config
    (a long experiment may have been interrupted with one): they resume to the same result."""
    net, opt = _net(), lambda: optim.sgd(0.5, momentum=0.9, nesterov=True)
    method = pp.ProxProp(tau_theta=0.2, solver="cg", cg_iterations=2)
    kw = dict(batch_size=100, progress=False)
    whole = train(net, digits, opt(), method, epochs=2, **kw)
    train(net, digits, opt(), method, epochs=1, out_dir=tmp_path, **kw)

    def to_old_format(arrays, meta):
        config = meta["config"]
        del config["method"], config["data"]["fingerprint"]
        config.update(algorithm="proxprop", tau_theta=0.2, solver="cg", cg_iterations=2,
                      cg_tol=None, cg_variant="textbook", exact_system=None)
        del meta["history"]["diagnostics"]

    rewrite_checkpoint(tmp_path / CHECKPOINT, to_old_format)
    resumed = train(net, digits, opt(), method, epochs=2, out_dir=tmp_path, resume=True, **kw)
    assert max_abs_diff(resumed.theta, whole.theta) == 0
    other = pp.ProxProp(tau_theta=0.2, solver="cg", cg_iterations=3)  # not the same method
    with pytest.raises(ValueError, match="different settings.*method"):
        train(net, digits, opt(), other, epochs=3, out_dir=tmp_path, resume=True, **kw)
