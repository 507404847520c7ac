"""The command line runs the demo and training offline; bad input gets one line and exit status 2.

Called in-process (``main([...])``) on the shipped digits with tiny settings; one test runs
``python -m penaltyprop`` as a subprocess to check the entry point itself.
"""
import json
import subprocess
import sys

import pytest

from penaltyprop.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--subset", "200", "--epochs", "2", "--batch-size", "50", "--no-progress"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["train", "--help"]])
def test_every_command_has_help(capsys, argv):
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and out.startswith("usage: penaltyprop")


def test_train_help_lists_every_setting(capsys):
    _, out, _ = _run(capsys, "train", "--help")
    for flag in ("--dataset", "--data-dir", "--subset", "--model", "--activation", "--algorithm",
                 "--solver", "--cg-iterations", "--cg-variant", "--tau", "--tau-theta",
                 "--optimizer", "--momentum", "--weight-decay", "--batch-size", "--epochs",
                 "--seed", "--dtype", "--backend", "--out", "--resume"):
        assert flag in out


def test_demo_prints_a_table_and_saves_a_plot(capsys, tmp_path):
    code, out, err = _run(capsys, "demo", "--epochs", "2", "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    for label in ("BackProp", "ProxProp (exact)", "ProxProp (CG-3)"):
        assert label in out
    assert "test acc" in out and str(tmp_path / "demo.png") in out
    assert (tmp_path / "demo.png").read_bytes()[:8] == PNG
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(len(r["history"]["epoch"]) == 3 for r in results.values())  # epochs 0, 1, 2


def test_train_backprop_writes_history_plot_checkpoint_and_resumes(capsys, tmp_path):
    code, out, err = _run(capsys, "train", *TINY, "--out", str(tmp_path))
    assert code == 0, err
    assert "BackProp" in out and "epoch   2:" in out and "final: train loss" in out
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2] and history["test_acc"] is not None
    assert (tmp_path / "training.png").read_bytes()[:8] == PNG
    assert (tmp_path / "checkpoint.npz").is_file()
    code, out, err = _run(capsys, "train", *TINY[:2], "--epochs", "3", "--batch-size", "50",
                          "--no-progress", "--out", str(tmp_path), "--resume")
    assert code == 0, err
    assert "epoch   3:" in out and "epoch   1:" not in out
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [0, 1, 2, 3]


@pytest.mark.parametrize("extra", [
    ["--algorithm", "proxprop", "--solver", "cg", "--cg-iterations", "2", "--tau-theta", "0.5"],
    ["--algorithm", "proxprop", "--solver", "exact", "--optimizer", "adam", "--dtype", "float64"],
    ["--optimizer", "sgd", "--momentum", "0.5", "--weight-decay", "1e-4", "--model", "64-20-10",
     "--activation", "tanh"],
])
def test_train_runs_with_other_settings(capsys, extra):
    code, out, err = _run(capsys, "train", *TINY, *extra)
    assert code == 0, err
    assert "final: train loss" in out


def test_train_reports_divergence_without_failing(capsys):
    code, out, err = _run(capsys, "train", *TINY, "--optimizer", "sgd", "--tau", "1e30")
    assert code == 0, err
    assert "diverged in epoch 1" in out


def test_model_cnn_is_accepted(capsys):
    pytest.importorskip("penaltyprop.conv")
    code, out, err = _run(capsys, "train", "--subset", "40", "--epochs", "1", "--batch-size",
                          "20", "--no-progress", "--model", "cnn")
    assert code == 0, err
    assert "CNN" in out


def _corrupt_cifar(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(b"\x00" * 1000)  # far too short
    return tmp_path


@pytest.mark.parametrize("argv,words", [
    (["train", "--dataset", "imagenet"], "invalid choice"),
    (["train", "--dataset", "cifar10", "--data-dir", "/no/such/folder"], "not a folder"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}", "--no-download"], "missing"),
    (["train", "--dataset", "cifar10", "--data-dir", "{corrupt}", "--no-download"], "bin"),
    (["train", "--solver", "cg"], "--solver only applies to --method proxprop"),
    (["train", "--tau-theta", "0.1"], "--tau-theta only applies"),
    (["train", "--algorithm", "proxprop", "--solver", "exact", "--cg-iterations", "3"],
     "--cg-iterations only applies to --solver cg"),
    (["train", "--batch-size", "5000"], "larger than the training set"),
    (["train", "--tau", "0"], "--tau"),
    (["train", "--tau", "-0.5"], "--tau"),
    (["train", "--tau-theta", "nan", "--algorithm", "proxprop"], "--tau-theta"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--model", "64-10-7"], "--model"),
    (["train", "--model", "wide"], "--model"),
    (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--resume"], "--resume needs --out"),
    (["train", "--backend", "tpu"], "invalid choice"),
    (["train", "--subset", "99999"], "subset"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_input_gives_one_line_and_status_2(capsys, tmp_path, argv, words):
    argv = [a.format(tmp=tmp_path, corrupt=_corrupt_cifar(tmp_path) if "{corrupt}" in a else "")
            for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("penaltyprop") and "error" in lines[0]
    assert words in lines[0]
    assert "Traceback" not in err + out


def test_existing_run_is_not_overwritten(capsys, tmp_path):
    assert _run(capsys, "train", *TINY, "--out", str(tmp_path))[0] == 0
    code, _, err = _run(capsys, "train", *TINY, "--out", str(tmp_path))
    assert code == 2 and "--resume" in err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "penaltyprop", "train", "--tau", "-1"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("image_shape,blocks,fc_in", [((3, 32, 32), 3, 320), ((1, 28, 28), 2, 980),
                                                      ((1, 8, 8), 3, 20)])
def test_model_cnn_keeps_the_conv_blocks_that_pooling_can_halve(image_shape, blocks, fc_in):
    """--model cnn is the paper's CNN on CIFAR-10 and drops conv blocks an odd size can't pool."""
    from types import SimpleNamespace

    from penaltyprop.model_spec import build_model

    ds = SimpleNamespace(image_shape=image_shape, n_classes=10, name="x")
    net, _ = build_model("cnn", ds, "relu")
    assert net.n_linear == blocks + 1 and net.phis[-1].in_shape == (fc_in,)
    with pytest.raises(ValueError, match="needs even image sizes"):
        build_model("cnn", SimpleNamespace(image_shape=(1, 7, 7), n_classes=10, name="odd"), "relu")


# --------------------------------------------------------------------------- methods
def _train_args(*argv):
    from penaltyprop.cli import build_parser

    return build_parser().parse_args(["train", *argv])


def test_every_setting_of_every_registered_method_has_a_flag(capsys):
    """The flags are generated from the registry: one per setting, named after it."""
    from penaltyprop.methods import METHODS, method_settings

    _, out, _ = _run(capsys, "train", "--help")
    assert "--method" in out and "--algorithm" in out
    for name, cls in METHODS.items():
        assert name in out
        for setting, *_ in method_settings(cls):
            assert "--" + setting.replace("_", "-") in out


def test_method_settings_take_their_defaults_from_the_method_class():
    """--method proxprop --solver exact is pp.ProxProp(solver="exact"): tau_theta is the class's
    default, not one of the command line's; --algorithm is the same flag as --method."""
    import penaltyprop as pp
    from penaltyprop.commands.train import settings

    method, tau = settings(_train_args("--method", "proxprop", "--solver", "exact"))
    assert method == pp.ProxProp(solver="exact") and tau == 1.0
    method, tau = settings(_train_args("--algorithm", "proxprop", "--cg-iterations", "5",
                                       "--tau-theta", "0.05"))
    assert method == pp.ProxProp(tau_theta=0.05, solver="cg", cg_iterations=5)
    method, tau = settings(_train_args())
    assert method == pp.BackProp() and tau == 0.05
    method, tau = settings(_train_args("--method", "proxprop", "--optimizer", "adam"))
    assert tau == 1e-3
    args = _train_args("--method", "altmin")  # the source's optimizer and rate, no --tau
    method, tau = settings(args)
    assert method == pp.AltMin() and args.optimizer == "adam" and tau == 0.008
    with pytest.raises(ValueError, match="--tau has no default for --method altmin"):
        settings(_train_args("--method", "altmin", "--optimizer", "nesterov"))


def test_every_registered_method_trains_from_the_command_line(capsys):
    """One epoch (or sweep) of every method in the registry, with its default settings."""
    from penaltyprop.methods import METHODS

    for name, cls in METHODS.items():
        tau = [] if cls.kind == "lifted" or cls.default_tau is not None else ["--tau", "0.01"]
        batch = [] if cls.kind == "lifted" else ["--batch-size", "30"]
        code, out, err = _run(capsys, "train", "--method", name, "--subset", "60", "--epochs",
                              "1", "--no-progress", *batch, *tau)
        assert code == 0, (name, err)
        assert cls().label in out and ("final: train loss" in out or "diverged" in out)


@pytest.mark.parametrize("command", [["train", "--epochs", "1"], ["demo", "--epochs", "1"],
                                     ["experiment", "figure2", "--scale", "tiny"]])
def test_an_out_that_is_a_file_is_one_line_before_any_work(capsys, tmp_path, command):
    """--out pointing at a file (or a read-only place) fails at once, naming the flag and path,
    instead of a traceback after the work (issue 14)."""
    target = tmp_path / "a-file"
    target.write_text("x")
    code, out, err = _run(capsys, *command, "--out", str(target))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and str(target) in lines[0]
    assert "epoch" not in out  # nothing was trained


def test_os_errors_are_one_line_naming_the_path(capsys, monkeypatch):
    import penaltyprop.commands.demo as demo

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "/some/where/demo.png")

    monkeypatch.setattr(demo, "load_dataset", full_disk)
    code, out, err = _run(capsys, "demo", "--epochs", "1")
    assert code == 2
    assert err.strip() == "penaltyprop demo: error: /some/where/demo.png: No space left on device"
