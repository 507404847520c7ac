"""The lifted methods (BCD, ADMM) at their entry points and in training: bound to their data,
labels checked, advice that fits, exact resume.

Each test fails on the code before its fix: a state swept another batch of the same shape
(the original batch's inputs with the new labels), a label of -1 trained as class 9, short or
float labels and another network gave raw IndexError or matmul errors, NaN in theta was
accepted, ``train()`` refused a lifted method on fewer than 500 samples and recorded a batch
size that never ran, a setting too extreme for float32 was reported with advice to use
``solver='cg'`` (which BCD and ADMM do not have) and RuntimeWarnings on stderr, and a resumed
run restarted its per-sample variables (another result than an uninterrupted run).
"""
import warnings

import numpy as np
import pytest
from helpers import random_problem, rewrite_checkpoint

import penaltyprop as pp
from penaltyprop import cli
from penaltyprop.checkpoint import CheckpointError
from penaltyprop.data import load_dataset
from penaltyprop.methods import lifted
from penaltyprop.train import CHECKPOINT, train

METHODS = [pp.BCD(), pp.ADMM(warm_start_sweeps=0)]


def _ids(method):
    return method.name


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", subset=200)


def _problem(seed):
    return random_problem([6, 8, 7, 3], 12, seed=seed)


# ------------------------------------------------------------------ the state and its data
@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_a_sweep_with_other_data_of_the_same_shape_is_refused(method):
    net, theta, XA, yA = _problem(0)
    _, _, XB, yB = _problem(1)
    assert not np.array_equal(yA, yB) and not np.array_equal(XA, XB)  # really other data
    state = method.init_state(net, theta, XA, yA)
    for X, y, which in ((XB, yB, "X"), (XA, yB, "y"), (XB, yA, "X")):
        for entry in ("sweep", "steps", "diagnostics"):
            with pytest.raises(ValueError, match=rf"other data \({which} differs\).*init_state"):
                getattr(method, entry)(net, theta, state, X, y)
    with pytest.raises(ValueError, match=r"other data \(y differs\)"):
        method.objective(net, theta, state, yB)
    # equal copies are the same data: the sweep is the one with the arrays themselves
    theta_copy, _ = method.sweep(net, theta, state, XA.copy(), yA.copy())
    theta_same, _ = method.sweep(net, theta, state, XA, yA)
    for (W1, b1), (W2, b2) in zip(theta_copy, theta_same):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)


BAD_LABELS = [
    (lambda y: np.where(y == 0, -1, y), r"labels in 0\.\.2 .*-1"),  # -1 was trained as class 2
    (lambda y: np.where(y == 0, 3, y), r"labels in 0\.\.2 .*3"),
    (lambda y: y[:5], r"y must have shape \(12,\)"),
    (lambda y: y.astype(np.float64), "integer class labels"),
]


@pytest.mark.parametrize("method", METHODS, ids=_ids)
@pytest.mark.parametrize("bad, match", BAD_LABELS)
def test_labels_are_checked_at_every_entry_point(method, bad, match):
    net, theta, X, y = _problem(0)
    state = method.init_state(net, theta, X, y)
    y_bad = bad(y)
    for call in (lambda: method.init_state(net, theta, X, y_bad),
                 lambda: method.sweep(net, theta, state, X, y_bad),
                 lambda: method.steps(net, theta, state, X, y_bad),
                 lambda: method.diagnostics(net, theta, state, X, y_bad),
                 lambda: method.objective(net, theta, state, y_bad)):
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_another_network_or_nan_in_theta_is_named(method):
    net, theta, X, y = _problem(0)
    state = method.init_state(net, theta, X, y)
    other = pp.mlp([6, 5, 7, 3])  # one hidden width differs
    with pytest.raises(ValueError, match=r"state does not fit this network.*a\[1\] has shape "
                                         r"\(8, 12\), expected \(5, 12\)"):
        method.sweep(other, other.init(seed=1, dtype="float64"), state, X, y)
    shorter = pp.mlp([6, 8, 3])  # one layer fewer
    with pytest.raises(ValueError, match="state does not fit this network of 2 layers"):
        method.diagnostics(shorter, shorter.init(seed=1, dtype="float64"), state, X, y)
    nan = [(theta[0][0] * np.nan, theta[0][1]), *theta[1:]]
    for call in (lambda: method.sweep(net, nan, state, X, y),
                 lambda: method.diagnostics(net, nan, state, X, y)):
        with pytest.raises(ValueError, match=r"theta\[0\]\[0\] \(W\) contains NaN"):
            call()
    with pytest.raises(ValueError, match="state must be the LiftedState"):
        method.sweep(net, theta, (state.a, state.z), X, y)


def test_a_state_of_another_method_or_output_setting_is_refused_at_every_entry_point():
    """BCD's split output keeps a_K beside z_K, ADMM a multiplier: a state of one form was
    swept or evaluated by a method of another (a raw broadcast error from the split objective
    on a merged state; silently ignored a_K or lam otherwise)."""
    net, theta, X, y = _problem(0)
    merged, split, admm = pp.BCD(), pp.BCD(output="split"), pp.ADMM(warm_start_sweeps=0)
    states = {"merged": merged.init_state(net, theta, X, y),
              "split": split.init_state(net, theta, X, y)}
    _, states["admm"] = admm.sweep(net, theta, admm.init_state(net, theta, X, y), X, y)
    assert states["admm"].lam is not None
    wrong = [(split, "merged", r"3 activations a, where method 'bcd' keeps 4"),
             (merged, "split", r"4 activations a, where method 'bcd' keeps 3"),
             (admm, "split", r"4 activations a, where method 'admm' keeps 3"),
             (merged, "admm", r"a multiplier lam, which method 'bcd' does not have"),
             (split, "admm", r"activations a, where method 'bcd' keeps 4")]
    for method, form, match in wrong:
        for entry in ("sweep", "steps", "diagnostics"):
            with pytest.raises(ValueError, match=match + r".*another method's init_state"):
                getattr(method, entry)(net, theta, states[form], X, y)
        with pytest.raises(ValueError, match=match + r".*another method's init_state"):
            method.objective(net, theta, states[form], y)
    for method, form in ((merged, "merged"), (split, "split"), (admm, "admm"), (admm, "merged")):
        method.diagnostics(net, theta, states[form], X, y)  # its own form (ADMM: lam or none)


def test_a_state_built_by_hand_may_be_evaluated_but_not_swept():
    """LiftedState(a, z) (as a notebook builds it between block updates) holds no labels."""
    net, theta, X, y = _problem(0)
    method = pp.BCD()
    a, z = pp.forward(net, theta, X)
    hand = lifted.LiftedState(list(a), list(z))
    assert np.isfinite(float(method.objective(net, theta, hand, y)))
    with pytest.raises(ValueError, match="holds no labels"):
        method.sweep(net, theta, hand, X, y)


# ------------------------------------------------------------------ train() with a lifted method
@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_train_records_the_full_batch_a_lifted_method_sweeps(method, digits):
    N = len(digits.y_train)  # 200, fewer than the oracle methods' default of 500
    result = train(pp.mlp([64, 16, 10]), digits, None, method, epochs=1, progress=False)
    assert result.config["batch_size"] == N  # what ran: every sweep uses all N samples
    assert train(pp.mlp([64, 16, 10]), digits, None, method, batch_size=N, epochs=1,
                 progress=False).config["batch_size"] == N
    with pytest.raises(ValueError, match=r"batch_size=10 does not apply to .*all 200 training"):
        train(pp.mlp([64, 16, 10]), digits, None, method, batch_size=10, epochs=1,
              progress=False)


def test_the_default_batch_of_an_oracle_method_fits_a_small_training_set(digits):
    """train() refused its own default (500) on 200 samples; an explicit 500 is still refused."""
    net = pp.mlp([64, 16, 10])
    result = train(net, digits, optim_sgd(), pp.BackProp(), epochs=1, progress=False)
    assert result.config["batch_size"] == len(digits.y_train) == 200
    with pytest.raises(ValueError, match="batch_size=500 is larger than the training set"):
        train(net, digits, optim_sgd(), pp.BackProp(), batch_size=500, progress=False)


def optim_sgd():
    return pp.optim.sgd(0.1)


# ------------------------------------------------------------------ settings too extreme
def _singular_data(dtype="float32"):
    """4 features, one of them always 0: A A^T is singular without a proximal term or ridge."""
    rng = np.random.default_rng(0)
    X = rng.random((4, 20)).astype(dtype)
    X[2] = 0.0
    return X, rng.integers(0, 3, 20)


@pytest.mark.parametrize("method, net, advice", [
    (pp.BCD(rho=1e300), pp.mlp([4, 3]), r"BCD theta-step of layer 1: .*alpha/rho = 5e-300.*"
                                        r"raise alpha or lower rho, or use float64"),
    (pp.ADMM(ridge=1e-300), pp.mlp([4, 5, 3]), r"ADMM theta-step of layer 1: .*ridge 1e-300.*"
                                              r"raise ridge, or use float64"),
])
def test_a_setting_too_extreme_for_float32_gets_advice_that_fits_the_method(method, net, advice):
    X, y = _singular_data()
    theta = net.init(seed=0, dtype="float32")
    state = method.init_state(net, theta, X, y)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=advice) as err:
        method.sweep(net, theta, state, X, y)
    assert "solver='cg'" not in str(err.value)  # BCD and ADMM have no CG
    # float64 resolves it (the advice is right): the same sweep succeeds there
    X64, theta64 = X.astype(np.float64), net.init(seed=0, dtype="float64")
    method.sweep(net, theta64, method.init_state(net, theta64, X64, y), X64, y)


def test_an_overflowing_weight_is_named_not_a_setting_that_has_no_part_in_it(digits):
    """beta = 1e300 overflows float32 in ADMM's output step; the advice was to raise ridge."""
    result = train(pp.mlp([64, 16, 10]), digits, None, pp.ADMM(beta=1e300), epochs=3,
                   progress=False)
    reason = result.history["diverged_reason"]
    assert result.diverged and "beta = 1e+300" in reason and "float64" in reason
    assert "ridge" not in reason and "solver='cg'" not in reason


def test_extreme_settings_in_training_give_the_advice_and_no_runtime_warnings(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning fails the test
        status = cli.main(["train", "--method", "bcd", "--rho", "1e300", "--epochs", "1",
                           "--subset", "300"])
    out, err = capsys.readouterr()
    assert status == 0
    assert "raise alpha or lower rho" in out and "solver='cg'" not in out
    assert "Warning" not in err
    with warnings.catch_warnings():  # the bench sweeps directly, outside train()
        warnings.simplefilter("error")
        status = cli.main(["bench", "--method", "bcd", "--rho", "1e300", "--model", "64-100-10",
                           "--batch-size", "100", "--repetitions", "1", "--no-breakdown"])
    err = capsys.readouterr().err  # the bench's progress lines, then the error
    assert status == 2 and "Warning" not in err
    assert err.strip().splitlines()[-1].startswith("penaltyprop bench: error: BCD theta-step")
    assert "raise alpha or lower rho" in err


# ------------------------------------------------------------------ exact resume
@pytest.mark.parametrize("method", [pp.BCD(), pp.ADMM(warm_start_sweeps=1)], ids=_ids)
def test_a_resumed_lifted_run_ends_bit_for_bit_where_an_uninterrupted_one_does(method, digits,
                                                                                tmp_path):
    """ADMM's multiplier is active from sweep 2: the resume after sweep 2 needs it."""
    net = pp.mlp([64, 16, 10])
    kw = dict(epochs=4, progress=False, batch_size=len(digits.y_train))
    whole = train(net, digits, None, method, **kw)
    train(net, digits, None, method, **{**kw, "epochs": 2}, out_dir=tmp_path)  # then killed
    resumed = train(net, digits, None, method, **kw, out_dir=tmp_path, resume=True)
    for (W1, b1), (W2, b2) in zip(whole.theta, resumed.theta):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    for key in ("train_loss", "val_acc", "diagnostics", "steps", "test_loss"):
        assert resumed.history[key] == whole.history[key], key
    assert resumed.history["diagnostics"][-1]["sweeps"] == 4  # the counter did not restart


def test_a_lifted_checkpoint_without_its_state_is_not_resumed_inexactly(digits, tmp_path):
    """A checkpoint that holds theta only (as earlier versions wrote them) is refused."""
    net = pp.mlp([64, 16, 10])
    train(net, digits, None, pp.BCD(), epochs=1, progress=False, out_dir=tmp_path)

    def drop_state(arrays, meta):
        for name in [n for n in arrays if n.startswith("state_")]:
            del arrays[name]
        del meta["method_state"]

    rewrite_checkpoint(tmp_path / CHECKPOINT, drop_state)
    with pytest.raises(CheckpointError, match="holds no state of the lifted method.*not "
                                              "continue the run exactly"):
        train(net, digits, None, pp.BCD(), epochs=2, progress=False, out_dir=tmp_path,
              resume=True)


def test_a_tampered_lifted_state_names_the_checkpoint(digits, tmp_path):
    net = pp.mlp([64, 16, 10])
    train(net, digits, None, pp.BCD(), epochs=1, progress=False, out_dir=tmp_path)

    def shrink(arrays, meta):
        arrays["state_z1"] = arrays["state_z1"][:, :5]

    rewrite_checkpoint(tmp_path / CHECKPOINT, shrink)
    with pytest.raises(CheckpointError, match=r"checkpoint.npz is a damaged checkpoint: .*z\[1\] "
                                              r"has shape \(16, 5\), expected \(16, 200\)"):
        train(net, digits, None, pp.BCD(), epochs=2, progress=False, out_dir=tmp_path,
              resume=True)


def test_bcds_split_output_state_is_checked_and_resumes_exactly(tmp_path):
    """The split output keeps a_K beside z_K: its state passes the state checks, is bound to its
    data like the merged one, and a checkpointed run resumes bit for bit."""
    data = pp.data.load_dataset("digits", subset=200)
    net = pp.mlp([64, 8, 10])
    method = pp.BCD(output="split")
    whole = pp.train.train(net, data, None, method, epochs=3, seed=0, progress=False)
    pp.train.train(net, data, None, method, epochs=2, seed=0, progress=False, out_dir=tmp_path)
    resumed = pp.train.train(net, data, None, method, epochs=3, seed=0, progress=False,
                             out_dir=tmp_path, resume=True)
    assert resumed.history["train_loss"] == whole.history["train_loss"]
    X = pp.data.batch_last(data.X_train)
    theta = net.init(seed=0, dtype=X.dtype)
    state = method.init_state(net, theta, X, data.y_train)
    with pytest.raises(ValueError, match="other data"):
        method.sweep(net, theta, state, X, (data.y_train + 1) % 10)
