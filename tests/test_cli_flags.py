"""A flag means the same in every command, and the help says what is true.

* A missing data set is downloaded unless ``--no-download`` is given, in ``train`` and in
  ``experiment`` alike (``--download`` is the explicit form of that default).
* ``experiment --blas-threads N`` limits BLAS to N threads for the run, as in ``train`` and
  ``demo``.
* ``experiment --help`` says what each backend runs on; the demo's help promises no running
  time in seconds (it depends on the machine).
* ``train --out``'s ``training.png`` names the method (and tau) in its legend and the model,
  in short, in its title; never the whole network description.
"""
import re

import pytest
from threadpoolctl import threadpool_info

import penaltyprop as pp
from penaltyprop.cli import build_parser, main
from penaltyprop.commands import experiment, train
from penaltyprop.data import DataError, MissingDataError

COMMANDS = {"train": ["train"], "experiment": ["experiment", "figure2"]}


@pytest.fixture
def wide(monkeypatch):
    """argparse wraps help to the terminal's width: make it wide, one line per option."""
    monkeypatch.setenv("COLUMNS", "1000")


def _help(capsys, *argv):
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def _option_help(text, flag):
    """The help paragraph of one option, on one line."""
    block = re.search(rf"\n  {re.escape(flag)}\s(.*?)(?=\n  -|\Z)", text, re.S)
    assert block is not None, f"{flag} is not in the help"
    return " ".join(block.group(1).split())


# --------------------------------------------------------------------------- --download
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flags,download", [([], True), (["--download"], True),
                                            (["--no-download"], False)])
def test_download_has_one_meaning_in_train_and_experiment(command, flags, download):
    assert build_parser().parse_args(COMMANDS[command] + flags).download is download


@pytest.mark.parametrize("command", COMMANDS)
def test_both_commands_explain_the_flag_alike(capsys, wide, command):
    text = _option_help(_help(capsys, *COMMANDS[command]), "--download, --no-download")
    assert "downloaded" in text and "--no-download fails" in text


@pytest.mark.parametrize("flags,download", [([], True), (["--no-download"], False)])
def test_experiment_hands_the_choice_to_the_run_and_says_what_to_do(capsys, monkeypatch,
                                                                    tmp_path, flags, download):
    seen = {}

    def missing(name, scale, **kwargs):
        seen.update(kwargs)
        raise MissingDataError("CIFAR-10 not found")

    monkeypatch.setattr(experiment, "run_experiment", missing)
    status = main(["experiment", "figure2", "--data-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert status == 2 and seen["download"] is download
    assert len(err.strip().splitlines()) == 1 and "--data-dir DIR" in err
    assert ("leave out --no-download" in err) is not download


def test_experiment_gives_the_download_hint_only_for_missing_data(capsys, monkeypatch, tmp_path):
    """A corrupt file is not fixed by --data-dir or by downloading: no hint then."""
    def corrupt(name, scale, **kwargs):
        raise DataError("mnist.csv line 3: 783 values, expected 785")

    monkeypatch.setattr(experiment, "run_experiment", corrupt)
    assert main(["experiment", "figure2", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "--data-dir DIR" not in err


@pytest.mark.parametrize("flags,download", [([], True), (["--no-download"], False)])
def test_train_hands_the_choice_to_the_loader_and_says_what_to_do(capsys, monkeypatch, flags,
                                                                  download):
    seen = {}

    def missing(name, **kwargs):
        seen.update(kwargs)
        raise MissingDataError("MNIST not found")

    monkeypatch.setattr(train, "load_dataset", missing)
    status = main(["train", "--dataset", "mnist", *flags])
    err = capsys.readouterr().err
    assert status == 2 and seen["download"] is download
    assert len(err.strip().splitlines()) == 1 and "--data-dir DIR" in err
    assert ("leave out --no-download" in err) is not download


# --------------------------------------------------------------------------- --blas-threads
def _blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


@pytest.mark.parametrize("n", [1, 2])
def test_experiment_limits_blas_threads_during_the_run(capsys, monkeypatch, n):
    seen = {}

    def fake(name, scale, **kwargs):
        seen["threads"] = _blas_threads()
        return {"markdown": "table"}

    monkeypatch.setattr(experiment, "run_experiment", fake)
    before = _blas_threads()
    assert main(["experiment", "figure2", "--scale", "tiny", "--blas-threads", str(n)]) == 0
    assert seen["threads"] == [n]
    assert _blas_threads() == before  # restored after the run
    assert "table" in capsys.readouterr().out


def test_experiment_blas_threads_is_checked(capsys):
    assert main(["experiment", "figure2", "--blas-threads", "0"]) == 2
    assert "--blas-threads: expected an integer >= 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- help texts
def test_experiment_help_says_what_each_backend_runs_on(capsys, wide):
    text = _option_help(_help(capsys, "experiment"), "--backend {numpy,cupy}")
    assert re.search(r"numpy: the CPU", text) and re.search(r"cupy: an NVIDIA GPU", text)
    assert "CuPy installed" in text


def test_demo_help_promises_no_running_time_in_seconds(capsys, wide):
    line = next(l for l in _help(capsys).splitlines() if l.strip().startswith("demo"))
    assert not re.search(r"\d\s*s\b", line), line  # "~10 s": the time depends on the machine
    assert "a few seconds" in line and "offline" in line


# --------------------------------------------------------------------------- training.png
def test_plot_text_names_the_method_and_the_model_in_short():
    label, title = train.plot_text(pp.ProxProp(solver="cg", cg_iterations=3), 1.0, "cnn",
                                   "CNN Network(Conv2d(3, 16, 5), ...)", "cifar10", "adam(...)")
    assert label == "ProxProp (cg3), tau = 1"
    assert title == "CNN (Section 5.3) on cifar10: adam(...)"
    label, title = train.plot_text(pp.BCD(), None, "64-100-10", "MLP 64-100-10 (relu)",
                                   "digits", "full-batch sweeps")
    assert (label, title) == ("BCD", "MLP 64-100-10 (relu) on digits: full-batch sweeps")
    _, title = train.plot_text(pp.BackProp(), 0.05, "cnn-authors", "CNN Network(...)", "d", "s")
    assert title.startswith("CNN (the authors' code) on d")


def test_train_cnn_plot_has_the_method_in_its_legend(capsys, monkeypatch, tmp_path):
    import penaltyprop.plotting

    drawn = {}

    def capture(histories, path, title=None):
        drawn.update(labels=list(histories), title=title)
        return path

    monkeypatch.setattr(penaltyprop.plotting, "save_histories_plot", capture)
    status = main(["train", "--model", "cnn", "--subset", "100", "--epochs", "1",
                   "--batch-size", "50", "--no-progress", "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    assert drawn["labels"] == ["BackProp, tau = 0.05"]
    assert drawn["title"].startswith("CNN (Section 5.3) on digits: sgd(")
    assert "Network(" not in drawn["title"]
