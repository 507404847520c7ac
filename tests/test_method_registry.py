"""A method is one definition: defining its class registers it, and every tool finds it there.

A method class defined in a user's module (or a notebook cell) trains through ``pp.train``,
from the command line, in the family experiment and in the bench, and ``train --method NAME
--help`` shows its own settings; a method file dropped into ``penaltyprop/methods/`` of a copy
of the package does the same with no other file edited. A definition that cannot work (no own
name, a setting named like a command's flag, a setting without help or default, no step, no
step size) is refused when it is defined, with the reason. Subclassing a method works: the
prox settings, the key and the trace do not mistake the subclass for its parent.
"""
import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop import bench, cli
from penaltyprop.commands.method_flags import settings_table
from penaltyprop.experiments import run_experiment
from penaltyprop.experiments.family import family_runs
from penaltyprop.methods import (
    METHODS,
    OracleMethod,
    ProxProp,
    method_from_config,
    register,
    setting,
    unregister,
)
from penaltyprop.methods.settings import COMMAND_FLAGS
from tests.helpers import random_problem

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _recipe_blocks():
    """The python blocks of docs/architecture.md's "Adding a method": (method file, its tests)."""
    text = ARCHITECTURE.read_text()
    recipe = text[text.index("### Adding a method"):]
    recipe = recipe[:recipe.index("\n### ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", recipe, re.S)
    method = next(b for b in blocks if "class SignGradient" in b)
    tests = next(b for b in blocks if "def test_" in b)
    return method, tests


#: the method file of the recipe, as a contributor writes it
SIGNGRAD, SIGNGRAD_TESTS = _recipe_blocks()


@pytest.fixture
def registry():
    """METHODS as it was before the test, afterwards (the test may define methods)."""
    before = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(before)


@pytest.fixture
def user_module(tmp_path, registry):
    """``load(source, name)``: a module written at test time, imported from tmp_path."""
    loaded = []

    def load(source, name="user_methods"):
        path = tmp_path / f"{name.rpartition('.')[2]}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def _run(capsys, *argv):
    """Exit status, stdout and stderr of the command line, whitespace runs made one space (help
    text wraps where it likes)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())


def _help_flags(text):
    """The flags a --help text names (whitespace made one space by ``_run``); a flag broken
    across lines by the help's wrapping ("--no- download") is read whole."""
    text = re.sub(r"(?<=[a-z])- (?=[a-z])", "-", text)
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", text))


# --------------------------------------------------------------------------- a user's method
def test_the_recipes_method_passes_the_recipes_tests(user_module):
    """docs/architecture.md's example, loaded as penaltyprop.methods.signgrad, and its tests."""
    module = user_module(SIGNGRAD, name="penaltyprop.methods.signgrad")
    assert METHODS["signgrad"] is module.SignGradient
    namespace = {}
    exec(compile(SIGNGRAD_TESTS, "test_family_signgrad.py", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 4
    for test in tests:
        test()
    assert method_from_config(module.SignGradient(scaled=False).config()) == \
        module.SignGradient(scaled=False)


def test_a_user_method_has_its_flags_and_trains_from_the_command_line(user_module, capsys):
    user_module(SIGNGRAD)
    code, out, _ = _run(capsys, "train", "--method", "signgrad", "--help")
    assert code == 0 and "settings of --method signgrad" in out
    assert "scale each layer's signs by its mean |gradient| (default True)" in out
    assert "--scaled" in out and "--tau-theta" not in out and "--rho" not in out
    code, out, _ = _run(capsys, "train", "--help")
    assert "signgrad" in out and "--scaled" in out and "--tau-theta" in out
    code, out, err = _run(capsys, "train", "--method", "signgrad", "--scaled", "no", "--subset",
                          "100", "--epochs", "1", "--no-progress")
    assert code == 0, err
    assert "SignGradient: scaled=False" in out and "lr=0.05" in out  # its default_tau
    code, _, err = _run(capsys, "train", "--method", "signgrad", "--scaled", "maybe")
    assert code == 2 and "--scaled: expected true or false, got 'maybe'" in err


def test_a_user_method_runs_in_the_family_and_the_bench(user_module, tmp_path, capsys):
    module = user_module(SIGNGRAD)
    runs = {run.method.key: run for run in family_runs()}
    assert runs["signgrad"] == (module.SignGradient(), "nesterov", 0.05)
    result = run_experiment("family", "tiny", out=tmp_path / "family", log=lambda line: None)
    for stored in result["datasets"].values():
        assert stored["runs"]["signgrad"]["method"] == "SignGradient"
    code, out, err = _run(capsys, "bench", "--method", "signgrad", "--model", "64-16-10",
                          "--batch-size", "20", "--repetitions", "1", "--no-breakdown")
    assert code == 0, err
    assert re.search(r"SignGradient( [0-9.]+){4} 1\.00 ", out)  # its floor: BackProp's products


def test_a_method_without_a_flop_count_has_no_floor(registry):
    @dataclasses.dataclass(frozen=True)
    class Halved(OracleMethod):
        name = "halved"
        default_tau = 0.1

        def direction(self, net, theta, X, y, check=True):
            J, g = pp.BackProp().direction(net, theta, X, y, check=check)
            return J, [(gW / 2, gb / 2) for gW, gb in g]

    result = bench.benchmark(model=(8, 6, 4), batch_size=5, repetitions=1, methods=[Halved()],
                             breakdown=False, memory=False)
    row = result["modes"][1]
    assert row["label"] == "Halved" and row["matrix_floor_ratio"] is None and row["gflop"] is None
    assert "Halved: no floor" in bench.format_report(result)


def test_settings_of_one_name_keep_each_methods_help_and_type(registry, capsys):
    @dataclasses.dataclass(frozen=True)
    class Steps(OracleMethod):
        name = "steps"
        default_tau = 0.1
        solver: int = setting(4, "number of inner steps of this method")

        def direction(self, net, theta, X, y, check=True):
            return pp.BackProp().direction(net, theta, X, y, check=check)

    _, out, _ = _run(capsys, "train", "--method", "steps", "--help")
    assert "number of inner steps of this method (default 4)" in out and "prox solver" not in out
    _, out, _ = _run(capsys, "train", "--method", "proxprop", "--help")
    assert "prox solver: exact (Eq. 44), cg or gradient (default cg)" in out
    assert "inner steps" not in out
    from penaltyprop.commands.train import settings

    args = cli.build_parser().parse_args(["train", "--method", "steps", "--solver", "7"])
    assert settings(args)[0] == Steps(solver=7)
    args = cli.build_parser().parse_args(["train", "--method", "proxprop", "--solver", "exact"])
    assert settings(args)[0] == pp.ProxProp(solver="exact")


# --------------------------------------------------------------------------- definitions
def _oracle_body():
    def direction(self, net, theta, X, y, check=True):
        return pp.BackProp().direction(net, theta, X, y, check=check)
    return {"direction": direction, "default_tau": 0.1}


@pytest.mark.parametrize("attrs, error, words", [
    ({"name": "Bad Name"}, ValueError, "lowercase"),
    ({"name": "backprop"}, ValueError, "taken by penaltyprop.methods.backprop.BackProp"),
    ({"name": "x", "default_tau": None}, TypeError, "set default_tau"),
    ({"name": "x", "default_tau": -1.0}, ValueError, "default_tau"),
    ({"name": "x", "direction": OracleMethod.direction}, TypeError, "define direction"),
    ({"name": "x", "__annotations__": {"tau": float}, "tau": setting(1.0, "a step")},
     ValueError, "named like the command line's own --tau"),
    ({"name": "x", "__annotations__": {"batch_size": int}, "batch_size": setting(1, "n")},
     ValueError, "--batch-size"),
    ({"name": "x", "__annotations__": {"label": str}, "label": setting("a", "b")},
     ValueError, "would hide Method.label"),
    ({"name": "x", "__annotations__": {"mu": float}, "mu": 1.0}, TypeError, "no help text"),
    ({"name": "x", "__annotations__": {"mu": float}}, TypeError, "no default"),
    ({"name": "x", "__annotations__": {"mu": float}, "mu": dataclasses.field(default=1.0)},
     TypeError, "no help text"),
    ({"name": "x", "networks": "relu"}, TypeError, "networks"),
])
def test_a_definition_that_cannot_work_is_refused_when_it_is_defined(registry, attrs, error,
                                                                      words):
    body = {**_oracle_body(), **attrs}
    with pytest.raises(error, match=re.escape(words)):
        type("Candidate", (OracleMethod,), body)
    assert set(METHODS) == set(registry) and "x" not in METHODS


def test_a_subclass_without_its_own_name_is_refused(registry):
    with pytest.raises(TypeError, match="inherits name 'proxprop'"):
        type("MyProx", (ProxProp,), {})
    unregistered = type("Scratch", (ProxProp,), {}, register=False)
    assert "proxprop" in METHODS and METHODS["proxprop"] is ProxProp
    assert unregistered(solver="exact").prox.solver == "exact"


def test_a_class_defined_again_replaces_itself_and_register_unregister_work(registry):
    def define():
        @dataclasses.dataclass(frozen=True)
        class Again(OracleMethod):
            name = "again"
            default_tau = 0.1

            def direction(self, net, theta, X, y, check=True):
                return pp.BackProp().direction(net, theta, X, y, check=check)
        return Again

    first, second = define(), define()  # a notebook cell run twice
    assert METHODS["again"] is second is not first
    assert unregister("again") is second and "again" not in METHODS
    with pytest.raises(ValueError, match="no method 'again'"):
        unregister("again")
    later = dataclasses.dataclass(frozen=True)(
        type("Later", (OracleMethod,), {**_oracle_body(), "name": "later"}, register=False))
    assert "later" not in METHODS
    assert register(later) is later and METHODS["later"] is later
    # a class with settings, registered after its @dataclass decorator put the defaults in
    # the fields' place: its settings keep their help texts
    with_settings = dataclasses.dataclass(frozen=True)(type(
        "WithSettings", (OracleMethod,), {**_oracle_body(), "name": "with_settings",
                                          "__annotations__": {"mu": float},
                                          "mu": setting(2.0, "a weight")}, register=False))
    assert register(with_settings) is METHODS["with_settings"]
    assert pp.methods.method_settings(with_settings) == [("mu", 2.0, float, "a weight")]
    undecorated = type("Undecorated", (OracleMethod,), {
        **_oracle_body(), "name": "undecorated", "__annotations__": {"mu": float}, "mu": 2.0},
        register=False)
    with pytest.raises(TypeError, match="no help text"):
        register(undecorated)
    with pytest.raises(TypeError, match="method class"):
        register(int)


def test_settings_without_the_dataclass_decorator_are_an_error_not_ignored(registry):
    Undecorated = type("Undecorated", (OracleMethod,),
                       {**_oracle_body(), "name": "undecorated",
                        "__annotations__": {"mu": float}, "mu": setting(1.0, "weight")})
    with pytest.raises(TypeError, match=r"@dataclass\(frozen=True\)"):
        Undecorated()


def test_the_command_flags_a_setting_may_not_take_are_the_commands_own(capsys):
    """COMMAND_FLAGS lists every flag of train and bench that is not a method setting."""
    settings = set(settings_table())
    for command in ("train", "bench"):
        _, out, _ = _run(capsys, command, "--help")
        own = {f.replace("-", "_") for f in _help_flags(out)} - settings
        assert own <= COMMAND_FLAGS, own - COMMAND_FLAGS


def test_the_family_refuses_two_runs_with_one_key(registry):
    @dataclasses.dataclass(frozen=True)
    class Twin(OracleMethod):
        name = "twin"
        default_tau = 0.1

        @property
        def key(self):
            return "backprop"

        def direction(self, net, theta, X, y, check=True):
            return pp.BackProp().direction(net, theta, X, y, check=check)

    with pytest.raises(ValueError, match="two runs of the family have the key 'backprop'"):
        family_runs()


# --------------------------------------------------------------------------- subclasses
def test_a_subclass_with_a_new_setting_keeps_its_parents_prox_trace_and_cost(registry):
    @dataclasses.dataclass(frozen=True)
    class Tagged(ProxProp):
        name = "tagged"
        note: str = setting("x", "a setting ProxProp does not have")

    method = Tagged(tau_theta=0.3, solver="exact", note="y")
    assert method.prox == pp.ProxProp(tau_theta=0.3, solver="exact").prox
    assert method.key == "tagged-exact" and method.label == "Tagged (exact)"
    assert method_from_config(method.config()) == method
    net, theta, X, y = random_problem([5, 6, 4, 3], 7)
    states = pp.penalty_steps(net, theta, X, y, 0.5, method=method)
    expected = pp.proxprop(net, theta, X, y, 0.5, tau_theta=0.3, solver="exact")
    for (W, b), (W0, b0) in zip(states[-1].theta, expected):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)
    shapes = [(6, 5, 7), (4, 6, 7), (3, 4, 7)]
    assert bench.step_flops(shapes, method) == bench.step_flops(shapes, pp.ProxProp(
        tau_theta=0.3, solver="exact"))


def test_a_subclass_with_its_own_step_is_not_traced_or_costed_as_its_parent(registry):
    @dataclasses.dataclass(frozen=True)
    class Doubled(ProxProp):
        name = "doubled"

        def direction(self, net, theta, X, y, check=True):
            J, d = super().direction(net, theta, X, y, check=check)
            return J, [(2 * dW, 2 * db) for dW, db in d]

    net, theta, X, y = random_problem([5, 6, 3], 4)
    with pytest.raises(ValueError, match="Doubled .* is none"):
        pp.penalty_steps(net, theta, X, y, 0.5, method=Doubled())
    assert bench.step_flops([(6, 5, 4), (3, 6, 4)], Doubled()) is None
    assert Doubled().key != pp.ProxProp().key


def test_the_trace_refuses_methods_that_are_no_sweep_on_E():
    net, theta, X, y = random_problem([5, 6, 3], 4)
    for method in (pp.BCD(), pp.AltMin()):
        with pytest.raises(ValueError, match="penalty_sweep"):
            pp.penalty_steps(net, theta, X, y, 0.5, method=method)


def test_the_package_names_every_method_class():
    for cls in METHODS.values():
        if cls.__module__.startswith("penaltyprop.methods."):
            assert getattr(pp, cls.__name__) is cls and cls.__name__ in pp.__all__
            assert cls.__name__ in pp.methods.__all__


# --------------------------------------------------------------------------- one file
def test_a_method_file_dropped_into_a_copy_of_the_package_is_all_it_takes(tmp_path):
    """Copy the package, add the recipe's penaltyprop/methods/signgrad.py and its tests, and run
    them and the commands from the copy: nothing else is edited."""
    package = Path(pp.__file__).parent
    root = tmp_path / "copy"
    shutil.copytree(package, root / "penaltyprop",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "penaltyprop" / "methods" / "signgrad.py").write_text(SIGNGRAD)
    (root / "tests").mkdir()
    shutil.copy(Path(__file__).parent / "helpers.py", root / "tests" / "helpers.py")
    (root / "tests" / "test_family_signgrad.py").write_text(SIGNGRAD_TESTS)

    script = textwrap.dedent("""
        import re, sys
        import pytest
        import penaltyprop as pp
        from penaltyprop import cli

        assert pp.METHODS["signgrad"] is pp.SignGradient
        assert pp.SignGradient.__module__ == "penaltyprop.methods.signgrad"
        assert pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_family_signgrad.py"]) == 0
        for argv in (["train", "--method", "signgrad", "--help"],
                     ["train", "--method", "signgrad", "--subset", "100", "--epochs", "1",
                      "--no-progress"],
                     ["bench", "--method", "signgrad", "--model", "64-16-10", "--batch-size",
                      "20", "--repetitions", "1", "--no-breakdown"],
                     ["experiment", "family", "--scale", "tiny", "--out", "fam"]):
            print("$", *argv, flush=True)
            assert cli.main(argv) == 0, argv
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=600,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin",
                               "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = " ".join(proc.stdout.split())
    assert "4 passed" in out
    assert "settings of --method signgrad" in out and "(default True)" in out
    assert "SignGradient: scaled=True" in out and "final:" in out
    assert re.search(r"\$ experiment .*\| SignGradient \| oracle \|", out)
    assert re.search(r"\$ bench .* SignGradient( [0-9.]+){4} 1\.00 ", out)
    stored = json.loads((root / "fam" / "digits" / "results.json").read_text())
    assert stored["runs"]["signgrad"]["method"] == "SignGradient"


# --------------------------------------------------------------------------- the docs
def test_the_docs_method_table_is_the_registrys():
    from penaltyprop.methods.table import generated, render_methods_table

    assert generated(ARCHITECTURE.read_text()) == render_methods_table(), (
        "docs/architecture.md's method table is out of date: run python -c \"from "
        "penaltyprop.methods.table import update; update('docs/architecture.md')\"")


def test_the_table_renders_a_new_method_and_the_markers_are_found(registry):
    from penaltyprop.methods.table import generated, render_methods_table, replace_generated

    @dataclasses.dataclass(frozen=True)
    class Fresh(OracleMethod):
        """A method the table does not know yet."""

        name = "fresh"
        default_tau = 0.1

        def direction(self, net, theta, X, y, check=True):
            return pp.BackProp().direction(net, theta, X, y, check=check)

    table = render_methods_table([Fresh])
    assert "| `fresh` | `Fresh` | oracle |" in table and "| no floor | no |" in table
    text = "a\n<!-- generated: methods -->\nold\n<!-- end generated -->\nb\n"
    assert generated(replace_generated(text, table)) == table
    with pytest.raises(ValueError, match="generated: methods"):
        replace_generated("no markers", table)


def test_the_architecture_page_speaks_to_users():
    text = ARCHITECTURE.read_text()
    for word in ("issue", "DESIGN.md", "milestone", "../shared", "/work/",
                 "proximal-backpropagation.md"):
        assert word.lower() not in text.lower(), word
