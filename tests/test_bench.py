"""The benchmark command keeps working; its flop counts are those of the products each mode does.

``python -m penaltyprop bench`` times one training step of BackProp, exact ProxProp and
CG-k against the machine's own GEMMs; ``benchmarks/targets.py`` checks a result against the
performance targets. These tests run the bench on a tiny network so that CI notices when it
breaks, check that the JSON holds every field the docs describe, check the targets on the
tiny run and on a synthetic result, and check the analytic flop counts against a count
written out by hand for one small network. Timings themselves are not asserted: the machine
is shared.
"""
import importlib.util
import json
import os
import types
from pathlib import Path

import pytest

import penaltyprop as pp
from penaltyprop import bench, cli
from penaltyprop.backend import numpy as np
from penaltyprop.backend.instruments import peak_memory, synchronize
from penaltyprop.commands.bench import main as bench_main


def _load_targets():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "targets.py"
    spec = importlib.util.spec_from_file_location("benchmarks_targets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


targets = _load_targets()

TINY = ["--model", "20-16-10", "--batch-size", "8", "--repetitions", "2"]
MODE_KEYS = {"label", "method", "solver", "cg_iterations", "median_s", "min_s", "max_s", "q1_s",
             "q3_s", "times_s", "gflop", "gflops", "fraction_of_peak", "ratio_to_backprop",
             "matrix_floor_ratio", "epoch_s", "model_s", "peak_memory_bytes",
             "kind", "ratio_to_floor"}  # issue 13: oracle or lifted; x BP over the floor
EXACT = pp.ProxProp(solver="exact")


def CG(k):
    return pp.ProxProp(solver="cg", cg_iterations=k)


def test_bench_command_writes_every_field(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_main([*TINY, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GEMM peak" in printed and "targets" not in printed  # the bench sets no targets
    result = json.loads(out.read_text())
    text, _ = targets.check(result)
    assert "targets" in text
    assert "shown here for reference only" in text  # the targets are set for the paper MLP
    assert set(result) == {"machine", "config", "peak", "modes", "breakdown",
                           "maxrss_bytes", "wall_s"}
    assert result["config"]["layer_shapes"] == [[16, 20, 8], [10, 16, 8]]  # (n_out, m, K)
    assert result["machine"]["cpu"] and result["machine"]["cpu_count"] >= 1
    assert result["peak"]["gflops"] > 0 and len(result["peak"]["gemms"]) == 3 * 2
    labels = [m["label"] for m in result["modes"]]
    assert labels == ["BackProp", "exact", "CG-1", "CG-3", "CG-5", "CG-10"]
    for m in result["modes"]:
        assert set(m) == MODE_KEYS
        assert len(m["times_s"]) == 2
        assert 0 < m["min_s"] <= m["q1_s"] <= m["median_s"] <= m["q3_s"] <= m["max_s"]
        assert m["gflop"] > 0 and m["peak_memory_bytes"] >= 0
    assert [m["method"] for m in result["modes"]] == [
        pp.BackProp().config(), pp.ProxProp(tau_theta=0.05, solver="exact").config(),
        *(pp.ProxProp(tau_theta=0.05, solver="cg", cg_iterations=k).config()
          for k in (1, 3, 5, 10))]
    assert result["modes"][0]["ratio_to_backprop"] == 1.0
    checked = targets.cost_targets(result["modes"], result["config"]["backend"])
    assert [t["bound"] for t in checked] == pytest.approx(
        [0.75, 1.25] + [1.1 * (3 + 2 * k) / 3 for k in (1, 3, 5, 10)])
    assert all(isinstance(t["holds"], bool) for t in checked)
    assert set(result["breakdown"]) >= {"forward pass", "SGD update", "exact: Gram matrix",
                                        "CG: one application of H", "CG: CG-2 solve"}


def test_bench_runs_on_the_selected_backend(backend):
    """The same tiny run on the backend of ``pytest --backend`` (CuPy: the GPU path)."""
    result = bench.benchmark(model=(12, 9, 4), batch_size=6, backend=backend, repetitions=1,
                             modes=("backprop", "exact", "cg"), cg_iterations=(2,))
    assert [m["label"] for m in result["modes"]] == ["BackProp", "exact", "CG-2"]
    assert result["config"]["backend"] == backend


def test_bench_runs_the_cnn():
    """``--model cnn`` times the network of Section 5.3 (here on two images)."""
    result = bench.benchmark(model="cnn", batch_size=2, repetitions=1, breakdown=False,
                             memory=False, cg_iterations=(1,))
    shapes = result["config"]["layer_shapes"]
    # conv 3->16, 16->20, 20->20 with 5x5 kernels at 32, 16, 8 pixels a side, then FC 320 -> 10
    assert shapes == [[16, 75, 2 * 32 * 32], [20, 400, 2 * 16 * 16], [20, 500, 2 * 8 * 8],
                      [10, 320, 2]]


def test_flop_counts_match_a_hand_count():
    """20-16-10, N = 8: the products of each mode counted by hand, 2 n m K flops each."""
    shapes = [(16, 20, 8), (10, 16, 8)]
    fwd = 2 * 16 * 20 * 8 + 2 * 10 * 16 * 8  # W_1 a_0, W_2 a_1
    backprop = fwd + fwd + 2 * 10 * 16 * 8  # + both gradients e a^T, + the adjoint W_2^T e
    assert bench.step_flops(shapes, pp.BackProp()) == backprop
    # exact, batch system (K = 8 < m + 1 = 21): Gram 8*8*20, Cholesky 8^3/3, and two
    # triangular solves with min(n_out, m + 1) = 16 right-hand sides, 2*8*8*16
    exact = backprop + 8 * 8 * 20 + 8**3 / 3 + 2 * 8 * 8 * 16
    assert bench.step_flops(shapes, EXACT) == pytest.approx(exact)
    # CG-3 in batch coordinates (K = 8 < m + 1 = 21, what cg_space="auto" runs): the Gram
    # matrix 8*8*20 once, then three products with it, 2*16*8*8 each
    cg3 = backprop + 8 * 8 * 20 + 3 * (2 * 16 * 8 * 8)
    assert bench.step_flops(shapes, CG(3)) == cg3
    # with K >= m + 1, matrix-free CG (cg_space="parameter"): each application of H a forward
    # and an adjoint
    shapes = [(6, 4, 50), (3, 6, 50)]
    backprop = 2 * (2 * 6 * 4 * 50 + 2 * 3 * 6 * 50) + 2 * 3 * 6 * 50
    cg3 = backprop + 3 * (2 * 6 * 4 * 50) * 2
    assert bench.step_flops(shapes, pp.ProxProp(solver="cg", cg_iterations=3,
                                                 cg_space="parameter")) == cg3
    # ... and what "auto" runs there, H formed: A A^T (4*4*50, one triangle), then three
    # products of the 6 x 5 rows with the 5 x 5 matrix
    cg3 = backprop + 4 * 4 * 50 + 3 * (2 * 6 * 5 * 5)
    assert bench.step_flops(shapes, CG(3)) == cg3


def test_flop_count_of_the_batch_system_with_few_inputs():
    """n_out > m + 1: prox_exact solves for G^-1 A^T, with m + 1 right-hand sides."""
    shapes = [(30, 4, 3), (2, 30, 3)]
    backprop = 2 * (2 * 30 * 4 * 3 + 2 * 2 * 30 * 3) + 2 * 2 * 30 * 3
    exact = backprop + 3 * 3 * 4 + 3**3 / 3 + 2 * 3 * 3 * 5
    assert bench.step_flops(shapes, EXACT) == pytest.approx(exact)


def test_flop_count_of_the_primal_system():
    """With K >= m + 1 the exact solver uses the (m+1) x (m+1) system: its flops are counted."""
    shapes = [(6, 4, 50), (3, 6, 50)]
    backprop = 2 * (2 * 6 * 4 * 50 + 2 * 3 * 6 * 50) + 2 * 3 * 6 * 50
    exact = backprop + 4 * 4 * 50 + 5**3 / 3 + 2 * 5 * 5 * 6
    assert bench.step_flops(shapes, EXACT) == pytest.approx(exact)


def test_gpu_epoch_targets_are_checked_and_reported(tmp_path):
    """The GPU's target (an epoch under 0.5 s, BackProp and exact) is built and printed by the
    same code as on the CPU; here for a tiny run's rows, relabelled as a CuPy run."""
    out = tmp_path / "b.json"
    assert bench_main([*TINY, "--modes", "backprop", "exact", "--no-breakdown",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["modes"]
    rows[0]["epoch_s"], rows[1]["epoch_s"] = 0.3, 0.7  # BackProp in time, exact not
    checked = targets.cost_targets(rows, "cupy")
    gpu = [t for t in checked if t.get("gpu")]
    assert [(t["bound"], t["holds"]) for t in gpu] == [(0.5, True), (0.5, False)]
    assert targets.cost_targets(rows, "numpy") == [t for t in checked if not t.get("gpu")]
    result["config"].update(backend="cupy", model=list(bench.PAPER_MLP), batch_size=500)
    report = targets.format_targets(result, checked)
    assert "targets on the GPU (for the paper MLP, batch 500, float32):" in report
    assert "[ok] BackProp epoch of 45,000 images < 0.5 s on the GPU: 0.30" in report
    assert "[FAIL] exact epoch of 45,000 images < 0.5 s on the GPU: 0.70" in report


def test_step_cost_targets():
    assert targets.target_ratio({"solver": "exact", "cg_iterations": 0}) == 1.25
    assert targets.target_ratio({"solver": "cg", "cg_iterations": 3}) == pytest.approx(1.1 * 3)
    assert targets.target_ratio({"solver": "backprop", "cg_iterations": 0}) is None


def _synthetic_result(peak_fraction, exact_ratio, cg3_ratio, backend="numpy", model=None):
    """A bench result with only what the targets read: the paper MLP unless ``model``."""
    def row(label, solver, k, ratio, fraction):
        return {"label": label, "solver": solver, "cg_iterations": k, "ratio_to_backprop": ratio,
                "fraction_of_peak": fraction, "matrix_floor_ratio": 1.1, "epoch_s": 0.3 * ratio}

    return {"config": {"model": model or list(bench.PAPER_MLP), "batch_size": 500,
                       "dtype": "float32", "backend": backend, "network": "MLP"},
            "modes": [row("BackProp", "backprop", 0, 1.0, peak_fraction),
                      row("exact", "exact", 0, exact_ratio, 0.7),
                      row("CG-3", "cg", 3, cg3_ratio, 0.5)]}


def test_targets_script_prints_ok_and_fail_and_sets_the_exit_status(tmp_path, capsys):
    """benchmarks/targets.py on synthetic results: each target [ok] or [FAIL], status 1 on a
    failure for the paper's setting, 0 when all hold or the setting is not the paper's."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_synthetic_result(0.8, 1.2, 3.2)))
    bad.write_text(json.dumps(_synthetic_result(0.7, 1.3, 3.2)))
    assert targets.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "step-cost targets (ratios within this run):" in out
    assert "[ok] BackProp step at >= 75% of the GEMM peak: 0.80" in out
    assert "[ok] exact step <= 1.25x BackProp: 1.20, flop floor 1.10" in out
    assert "[ok] CG-3 step <= 1.1 x (3 + 2*3)/3 = 3.30x BackProp: 3.20" in out
    assert "[FAIL]" not in out
    assert targets.main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] BackProp step at >= 75% of the GEMM peak: 0.70" in out
    assert "[FAIL] exact step <= 1.25x BackProp: 1.30" in out
    small = tmp_path / "small.json"  # another network: shown for reference, status 0
    small.write_text(json.dumps(_synthetic_result(0.7, 1.3, 3.2, model=[20, 16, 10])))
    assert targets.main([str(small)]) == 0
    assert "shown here for reference only" in capsys.readouterr().out
    gpu = tmp_path / "gpu.json"  # GPU: the epoch targets decide (0.3 * 1.3 s: in time)
    gpu.write_text(json.dumps(_synthetic_result(0.7, 1.3, 3.2, backend="cupy")))
    assert targets.main([str(gpu)]) == 0
    out = capsys.readouterr().out
    assert "[ok] exact epoch of 45,000 images < 0.5 s on the GPU: 0.39" in out
    assert targets.main([str(tmp_path / "missing.json")]) == 2


@pytest.mark.parametrize("call, name", [
    (lambda: bench.parse_model("abc"), "model"),
    (lambda: bench.parse_model("10-0-3"), "model"),
    (lambda: bench.benchmark(model=(4, 3), batch_size=0), "batch_size"),
    (lambda: bench.benchmark(model=(4, 3), repetitions=0), "repetitions"),
    (lambda: bench.benchmark(model=(4, 3), dtype="float16"), "dtype"),
    (lambda: bench.make_modes(("sgd",)), "modes"),
    (lambda: bench.make_modes(("exact",)), "modes"),
    (lambda: bench.make_modes(("backprop", "cg"), cg_iterations=(0,)), "cg_iterations"),
    (lambda: bench.modes_of([object()]), "oracle"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_command_line_rejects_bad_values(capsys):
    for argv in (["--batch-size", "0"], ["--model", "x-y"], ["--modes", "sgd"]):
        with pytest.raises(SystemExit):
            bench_main(argv)
    assert "expected an integer" in capsys.readouterr().err


def test_peak_memory_counts_what_the_call_allocates(xp):
    """An array of 10^6 float64 (8 MB) held at once: the peak is 8 MB plus small change."""
    def make():
        return xp.ones(10**6)

    result, peak = peak_memory(xp, make)
    assert result.shape == (10**6,)
    assert 8e6 <= peak < 8e6 + 2**20  # + at most 1 MiB of bookkeeping (CuPy rounds to 512 B)


def test_gpu_branches_with_a_stand_in_for_cupy():
    """synchronize and peak_memory's device branch, run on the CPU with a stand-in namespace.

    The stand-in records the calls CuPy would receive: a device synchronisation around
    the measured call, and the pool emptied before it; the peak is the pool's growth.
    """
    calls = []

    class Pool:
        size = 100

        def free_all_blocks(self):
            calls.append("free")

        def total_bytes(self):
            return self.size

    pool = Pool()

    def fn():
        calls.append("fn")
        pool.size += 4096
        return "done"

    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(
            synchronize=lambda: calls.append("sync"))),
        get_default_memory_pool=lambda: pool)
    synchronize(fake)
    assert calls == ["sync"]
    synchronize(np)  # NumPy: nothing to wait for
    calls.clear()
    assert peak_memory(fake, fn) == ("done", 4096)
    assert calls == ["sync", "free", "fn", "sync"]


# --------------------------------------------------------------------------- the hot path
# The speed-ups behind the benchmark's numbers change no result: each is an identity.
def _exact_layer(seed, n_out, m, K):
    rng = np.random.default_rng(seed)
    return rng.random((m, K)), rng.standard_normal((n_out, K))  # P >= 0 like ReLU outputs


@pytest.mark.parametrize("n_out, m, K", [(9, 5, 4), (3, 7, 4), (6, 5, 5)])
def test_batch_solve_associated_either_way_equals_the_primal_solve(backend, n_out, m, K):
    """D = -(delta G^-1) A^T (n_out <= m+1) or -delta (G^-1 A^T) (n_out > m+1), vs Eq. 44."""
    from penaltyprop.backend import get_backend, to_device, to_host
    from penaltyprop.prox import prox_exact

    xp = get_backend(backend)
    P, delta = _exact_layer(n_out + m + K, n_out, m, K)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    batch = [to_host(x) for x in prox_exact(Pd, dd, 0.05, system="batch")]
    primal = [to_host(x) for x in prox_exact(Pd, dd, 0.05, system="primal")]
    A = np.vstack([P, np.ones((1, K))])
    cond = 1 + 0.05 * np.linalg.norm(A, 2) ** 2  # of both systems
    scale = max(np.abs(primal[0]).max(), np.abs(primal[1]).max())
    for b, p in zip(batch, primal):  # two backward-stable solves: agree to cond * eps
        assert np.abs(b - p).max() <= 1e-14 * cond * scale


@pytest.mark.parametrize("solver, k, variant", [
    ("exact", None, "textbook"), ("cg", 3, "textbook"), ("cg", 2, "authors"),
    ("gradient", None, "textbook")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_direction_is_exactly_minus_the_update(backend, solver, k, variant, dtype):
    """The direction solves the prox system for delta, Algorithm 2's update (tau = 1) for -delta;
    every prox solver is odd in delta and negation is exact in floating point, so the
    direction equals -update bit for bit, in the input dtype."""
    from helpers import random_problem

    from penaltyprop.algorithms import prox_step_c, run_sweep, sweep
    from penaltyprop.backend import to_host

    net, theta, X, y = random_problem([9, 7, 5, 4], 6, backend=backend, dtype=dtype)
    method = pp.ProxProp(tau_theta=0.05, solver=solver, cg_iterations=k,
                         cg_variant=variant if solver == "cg" else None)
    _, d = method.direction(net, theta, X, y)
    _, u = run_sweep(sweep(net, theta, X, y, 1.0, prox_step_c(method.prox, 1.0)))
    for (dW, db), (uW, ub) in zip(d, u):
        assert dW.dtype == db.dtype == np.dtype(dtype)
        assert np.array_equal(to_host(dW), -to_host(uW))
        assert np.array_equal(to_host(db), -to_host(ub))


def test_the_cli_has_the_bench_command(tmp_path):
    from penaltyprop import cli

    out = tmp_path / "b.json"
    assert cli.main(["bench", *TINY, "--modes", "backprop", "--json", str(out)]) == 0
    assert [m["label"] for m in json.loads(out.read_text())["modes"]] == ["BackProp"]


# --------------------------------------------------------------------------- the family (issue 13)
FAMILY_SHAPES = [(3, 4, 5), (2, 3, 5)]  # (n_out, m, K): layers 4 -> 3 -> 2 on K = N = 5 samples


def test_bcd_sweep_flops_match_a_hand_count():
    """Per layer: its forward product once, the theta-prox (primal here: K = 5 >= m + 1),
    and for layer 2 the a-step, solved with W W^T (n = 2 < m = 3)."""
    layer1 = (2 * 3 * 4 * 5  # W_1 a_0
              + 16 * 5 + 2 * 3 * 4 * 5 + 5**3 / 3 + 2 * 25 * 3)  # P P^T, R A^T, Cholesky 5x5, 3 rhs
    layer2 = (2 * 2 * 3 * 5
              + 9 * 5 + 2 * 2 * 3 * 5 + 4**3 / 3 + 2 * 16 * 2
              + 2 * 2 * 3 * 5 + 4 * 3 + 2**3 / 3 + 2 * 4 * 5 + 2 * 2 * 3 * 5)  # r, WW^T, solve, W^T
    assert bench.step_flops(FAMILY_SHAPES, pp.BCD()) == pytest.approx(layer1 + layer2)
    assert bench.matrix_floor(FAMILY_SHAPES, pp.BCD()) == pytest.approx(
        (layer1 + layer2) / (2 * (120 + 60) + 60))


def test_admm_sweep_flops_match_a_hand_count():
    """Per layer: residual and new product (2 x 2nmK), the least-squares prox; the a-step."""
    layer1 = 4 * 3 * 4 * 5 + (16 * 5 + 2 * 3 * 4 * 5 + 5**3 / 3 + 2 * 25 * 3)
    layer2 = (4 * 2 * 3 * 5 + (9 * 5 + 2 * 2 * 3 * 5 + 4**3 / 3 + 2 * 16 * 2)
              + (2 * 2 * 3 * 5 + 4 * 3 + 2**3 / 3 + 2 * 4 * 5 + 2 * 2 * 3 * 5))
    assert bench.step_flops(FAMILY_SHAPES, pp.ADMM()) == pytest.approx(layer1 + layer2)


def test_altmin_step_flops_match_a_hand_count():
    """Forward and direction per layer (2 x 2nmK); the code below layer 2: 5 steps of a
    forward and an adjoint product, less the first forward; layer 2 at the new code."""
    g1, g2 = 2 * 3 * 4 * 5, 2 * 2 * 3 * 5
    assert bench.step_flops(FAMILY_SHAPES, pp.AltMin()) == 2 * g1 + 2 * g2 + 9 * g2 + g2
    assert bench.step_flops(FAMILY_SHAPES, pp.AltMin(inputs="forward")) == \
        2 * g1 + 2 * g2 + 9 * g2
    assert bench.step_flops(FAMILY_SHAPES, pp.AltMin(inner_steps=0)) == 2 * g1 + 2 * g2


def test_batch_space_prox_and_a_step_counts():
    """K < m + 1 picks the K x K system; n >= m solves with W^T W."""
    from penaltyprop.bench.flops import a_step_flops, exact_prox_flops
    assert exact_prox_flops(3, 6, 4, "batch") == 16 * 6 + 4**3 / 3 + 2 * 16 * 3 + 2 * 3 * 6 * 4
    assert a_step_flops(5, 3, 4) == 2 * 5 * 3 * 4 + 9 * 5 + 3**3 / 3 + 2 * 9 * 4 + 2 * 5 * 3 * 4


def test_bench_method_times_a_lifted_sweep_against_its_floor(tmp_path):
    out = tmp_path / "bench.json"
    assert bench_main([*TINY, "--method", "bcd", "--alpha", "2", "--no-breakdown",
                       "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["modes"]
    assert [r["label"] for r in rows] == ["BackProp", "BCD"]
    bcd = rows[1]
    assert bcd["kind"] == "lifted" and bcd["method"]["alpha"] == 2.0
    assert bcd["matrix_floor_ratio"] == pytest.approx(
        bench.matrix_floor([(16, 20, 8), (10, 16, 8)], pp.BCD()))
    assert bcd["ratio_to_floor"] == pytest.approx(bcd["ratio_to_backprop"]
                                                  / bcd["matrix_floor_ratio"])
    assert bcd["epoch_s"] is None  # a sweep over the batch is no multiple of an epoch


def test_bench_method_takes_the_presets_flags_as_the_methods_settings(tmp_path):
    out = tmp_path / "bench.json"
    assert bench_main([*TINY, "--method", "proxprop", "--solver", "cg", "--cg-iterations", "3",
                       "--tau-theta", "0.5", "--no-breakdown", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["modes"][1]
    assert row["label"] == "ProxProp (cg3)" and row["method"]["tau_theta"] == 0.5


@pytest.mark.parametrize("argv, message", [
    (["--rho", "2"], "--rho is a method setting"),
    (["--method", "bcd", "--modes", "exact"], "--modes"),
    (["--method", "proxprop", "--cg-iterations", "1", "3"], "one k"),
    (["--method", "bcd", "--tau-theta", "1"], "--tau-theta only applies"),
])
def test_bench_method_flags_are_checked(argv, message, capsys):
    assert cli.main(["bench", *TINY, *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_under_load_runs_its_competitors_only_during_the_timings(tmp_path, capsys):
    """--load K (issue 16): K competing GEMM processes during the timings, none left after."""
    import subprocess

    from penaltyprop.bench.load import competing_load
    from penaltyprop.cli import main

    with competing_load(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)  # running
    assert all(p.returncode is not None for p in procs)  # and stopped
    out = tmp_path / "new" / "folder" / "b.json"  # a missing folder is made, before the work
    code = main(["bench", "--model", "20-16-10", "--batch-size", "8", "--repetitions", "1",
                 "--modes", "exact", "--no-breakdown", "--load", "1", "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["config"]["load"] == 1
    children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    assert children.stdout.strip() == ""  # no competitor outlives the benchmark


def test_bench_json_into_a_file_path_fails_before_the_work(tmp_path, capsys):
    from penaltyprop.cli import main

    (tmp_path / "f").write_text("x")
    code = main(["bench", "--model", "20-16-10", "--batch-size", "8", "--repetitions", "1",
                 "--json", str(tmp_path / "f" / "b.json")])
    _, err = capsys.readouterr()
    assert code == 2 and "--json's folder" in err and "rounds" not in err
