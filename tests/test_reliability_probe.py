"""What a second outside probe of issue 14's classes found, one test per finding.

Each test fails on the code before its fix: the penalty energy broadcast a/z of the wrong shape
into a NumPy error, a list given as y or W was reported as "shape ()", the advice for a
numpy.matrix in theta was not code, net.init passed a bad seed to NumPy, np.float64 as a dtype
was refused, a one-class network silently trained nothing, train() called bad training data
"X" / "y" and a NaN in a given theta "the initial loss", an out_dir of 5 was a TypeError and
"" the current folder, a tampered checkpoint history redid epochs, became a diverged run or
crashed, its theta of the wrong dtype did not name the file, atomic writes left results
readable by their owner only, a lifted method skipped the command line's --resume and
--data-dir checks, bench --json into a folder failed only after the benchmark and bench
--tau-theta/--seed were not named, an empty path flag meant the current folder, an experiment
folder of other settings printed both settings whole, an experiment's bad seed left a
results.json, the family ignored --mnist-csv at scales without MNIST (and checked the file only
when it reached MNIST), and the fingerprint of huge float64 data warned of an overflow.
"""
import os
import stat

import numpy as np
import pytest
from helpers import rewrite_checkpoint

import penaltyprop as pp
from penaltyprop import cli, optim
from penaltyprop.checkpoint import CheckpointError
from penaltyprop.data import Dataset, load_dataset
from penaltyprop.fsutil import atomic_write_text
from penaltyprop.train import CHECKPOINT, train

KW = dict(batch_size=50, progress=False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", subset=100)


@pytest.fixture
def problem():
    net = pp.mlp([4, 5, 6, 3])
    rng = np.random.default_rng(0)
    return net, net.init(seed=0), rng.random((4, 7)), rng.integers(0, 3, 7)


def _net():
    return pp.mlp([64, 8, 10])


def _with(data, **parts):
    fields = {k: getattr(data, k) for k in ("name", "X_train", "y_train", "X_val", "y_val",
                                            "X_test", "y_test", "n_classes", "image_shape")}
    return Dataset(**{**fields, **parts})


# ------------------------------------------------------------------ the public functions
def test_penalty_energy_names_a_or_z_of_the_wrong_shape_or_dtype(problem):
    net, theta, X, y = problem
    a, z = pp.forward(net, theta, X)
    with pytest.raises(ValueError, match=r"z\[1\] must have shape \(5, 7\) .*got \(5, 3\)"):
        pp.penalty_energy(net, theta, a, [z[0], z[1][:, :3], *z[2:]], y, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"a\[2\] has dtype float32"):
        pp.penalty_energy(net, theta, [*a[:2], a[2].astype(np.float32), *a[3:]], z, y, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"a\[1\] must be an array, got list"):
        pp.penalty_energy(net, theta, [a[0], a[1].tolist(), *a[2:]], z, y, 1.0, 1.0)


def test_a_list_given_as_y_or_w_is_called_a_list(problem):
    net, theta, X, y = problem
    with pytest.raises(ValueError, match="y must be an array, got list"):
        pp.loss(net, theta, X, list(y))
    bad = [(theta[0][0].tolist(), theta[0][1]), *theta[1:]]
    with pytest.raises(ValueError, match=r"theta\[0\]\[0\] \(W\) must be an array, got list"):
        pp.gradient(net, bad, X, y)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix's own
def test_the_advice_for_a_matrix_in_theta_is_code_that_runs(problem):
    net, theta, X, y = problem
    bad = [(np.matrix(theta[0][0]), theta[0][1]), *theta[1:]]
    with pytest.raises(ValueError, match=r"is a numpy.matrix; pass numpy.asarray\(theta\[0\]"
                                         r"\[0\]\) instead"):  # was: "asarray(theta[0][0] (W))"
        pp.loss(net, bad, X, y)


@pytest.mark.parametrize("seed", ["a", -1, 1.5])
def test_init_names_a_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        pp.mlp([4, 3]).init(seed=seed)


def test_dtype_may_be_a_numpy_type(digits):
    theta = pp.mlp([4, 3]).init(seed=0, dtype=np.float32)
    assert theta[0][0].dtype == np.float32
    result = train(_net(), digits, optim.sgd(0.1), epochs=1, dtype=np.dtype("float64"), **KW)
    assert result.theta[0][0].dtype == np.float64 and result.config["dtype"] == "float64"
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got"):
        pp.mlp([4, 3]).init(dtype=np.float16)


def test_a_network_with_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 class scores"):
        pp.mlp([4, 5, 1])
    with pytest.raises(ValueError, match="at least 2 class scores"):
        pp.cnn(in_shape=(1, 8, 8), channels=(2,), n_classes=1)


# ------------------------------------------------------------------ the training loop
def test_train_names_the_part_of_the_data_that_is_bad(digits):
    X = digits.X_train.copy()
    X[3, 5] = np.nan
    with pytest.raises(ValueError, match="X_train contains NaN"):
        train(_net(), _with(digits, X_train=X), optim.sgd(0.1), **KW)
    with pytest.raises(ValueError, match=r"y_train must have shape \(100,\)"):
        train(_net(), _with(digits, y_train=digits.y_train[:-1]), optim.sgd(0.1), **KW)


def test_train_names_nan_in_a_given_theta(digits):
    theta = _net().init(seed=0, dtype="float32")
    theta[1] = (theta[1][0], theta[1][1] * np.nan)
    with pytest.raises(ValueError, match=r"theta\[1\]\[1\] \(b\) contains NaN"):
        train(_net(), digits, optim.sgd(0.1), theta=theta, **KW)


@pytest.mark.parametrize("out_dir", [5, ""])
def test_an_out_dir_that_is_not_a_path_is_named(digits, out_dir):
    with pytest.raises(ValueError, match="out_dir must be the path of a folder"):
        train(_net(), digits, optim.sgd(0.1), out_dir=out_dir, **KW)


def _history(**changes):
    def change(arrays, meta):
        meta["history"].update(changes)
    return change


@pytest.mark.parametrize("change, message", [
    (_history(epoch=[0]), "different lengths"),  # was resumed: epochs 1, 2 redone
    (_history(diverged="no"), "diverged is 'no'"),  # was: silently a diverged run
    (_history(train_loss="abc"), "train_loss is not a list of numbers"),  # was: AttributeError
    (_history(epoch=[0, 2, 3]), "epoch does not count"),
    (lambda arrays, meta: arrays.update(theta_0_W=arrays["theta_0_W"].astype(np.float64),
                                        theta_0_b=arrays["theta_0_b"].astype(np.float64)),
     "theta has dtype float64, the run float32"),  # was: "theta[0] has dtype ... X has ..."
])
def test_a_tampered_checkpoint_names_the_file_and_what_is_wrong(tmp_path, digits, change,
                                                                message):
    train(_net(), digits, optim.sgd(0.1), epochs=2, out_dir=tmp_path, **KW)
    rewrite_checkpoint(tmp_path / CHECKPOINT, change)
    with pytest.raises(CheckpointError, match=f"{tmp_path / CHECKPOINT} is a damaged "
                                              f"checkpoint: .*{message}"):
        train(_net(), digits, optim.sgd(0.1), epochs=3, out_dir=tmp_path, resume=True, **KW)


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "results.json", "{}")
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "results.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o644


# ------------------------------------------------------------------ the command line
def test_a_lifted_method_gets_the_same_flag_checks(tmp_path, capsys):
    base = ["train", "--method", "bcd", "--epochs", "1", "--subset", "40", "--model", "64-8-10"]
    assert cli.main([*base, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main([*base, "--data-dir", str(tmp_path / "file")]) == 2  # was ignored
    assert "--data-dir" in capsys.readouterr().err


def test_bench_json_that_is_a_folder_fails_before_the_benchmark(tmp_path, capsys, monkeypatch):
    from penaltyprop import bench

    def never(**kw):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(bench, "benchmark", never)
    assert cli.main(["bench", "--model", "64-8-10", "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path} is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("flags, named", [(["--tau-theta", "-1"], "--tau-theta"),
                                          (["--seed", "-1"], "--seed")])
def test_bench_flags_are_checked_by_name(flags, named, capsys):
    assert cli.main(["bench", "--model", "64-8-10", *flags]) == 2
    assert f"argument {named}" in capsys.readouterr().err


def test_an_experiment_folder_of_other_settings_names_what_differs(tmp_path):
    from penaltyprop.experiments.runner import Store

    Store(tmp_path, {"experiment": "figure2", "scale": "tiny", "numbers": {"epochs": 2}}).save()
    with pytest.raises(ValueError) as err:
        Store(tmp_path, {"experiment": "table1", "scale": "tiny", "numbers": {"epochs": 2}})
    message = str(err.value)
    assert message.startswith(f"--out {tmp_path} holds results of other settings "
                              "(experiment: 'figure2' -> 'table1')")
    assert "scale" not in message


@pytest.mark.parametrize("argv", [["train", "--out", ""], ["demo", "--out", " "],
                                  ["bench", "--json", ""], ["experiment", "figure2", "--out", ""]])
def test_an_empty_path_flag_is_refused_not_read_as_the_current_folder(argv, capsys):
    assert cli.main(argv) == 2  # "--out ''" (an unset variable) wrote into the current folder
    assert "expected a path, got" in capsys.readouterr().err


def test_an_experiment_checks_its_seed_before_writing_anything(tmp_path):
    from penaltyprop.experiments import run_experiment

    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        run_experiment("figure2", "tiny", out=tmp_path / "out", seed=-1, log=lambda line: None)
    assert not (tmp_path / "out").exists()  # a results.json was left behind


def test_the_family_checks_mnist_csv_before_its_runs(tmp_path):
    from penaltyprop.experiments import run_experiment

    quiet = dict(out=tmp_path / "out", log=lambda line: None)
    with pytest.raises(ValueError, match="mnist_csv does not apply to scale 'tiny'"):
        run_experiment("family", "tiny", mnist_csv=tmp_path / "m.csv", **quiet)  # was ignored
    with pytest.raises(ValueError, match=r"mnist_csv .*m\.csv is not a file"):
        run_experiment("family", "small", mnist_csv=tmp_path / "m.csv", **quiet)  # hours later
    assert not (tmp_path / "out").exists()


def test_the_fingerprint_of_huge_float64_data_warns_nothing(digits):
    import warnings

    from penaltyprop.data import fingerprint

    huge = _with(digits, X_train=digits.X_train.astype(np.float64) * 1e150)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: "RuntimeWarning: overflow encountered in cast"
        assert fingerprint(huge) != fingerprint(digits)
