r"""The performance targets, checked against a ``penaltyprop bench`` result: [ok] or [FAIL] each.

The package's bench measures and reports; the pass/fail thresholds live here. The step-cost
targets, for a quiet machine:

* BackProp's step at >= 75 % of the GEMM peak (:data:`BACKPROP_PEAK_FRACTION`);
* the exact ProxProp step <= 1.25x BackProp (:data:`EXACT_RATIO`);
* the CG-k step <= 1.1 (3 + 2k)/3 x BackProp (:data:`CG_SLACK`: CG-k does 3 + 2k products per
  layer where BackProp does 3, plus 10 %);
* on the GPU (CuPy results) also: an epoch of 45,000 images in under 0.5 s for BackProp and
  exact ProxProp (:data:`GPU_EPOCH_S`).

The flop-floor targets, on the CPU:

* the exact step <= 1.5x BackProp with one competing process (``bench --load 1``,
  :data:`EXACT_RATIO_LOADED`);
* every CG-k step <= 1.25x its own flop floor, quiet (:data:`CG_FLOOR_SLACK`).

They are set for the paper's MLP, batch 500, float32; for other settings they are shown for
reference only and do not change the exit status.

Usage::

    python benchmarks/targets.py bench.json [more.json ...]      # results written by --json
    python benchmarks/targets.py --run [bench options]            # run the bench, then check
    python benchmarks/targets.py --run --backend cupy --json bench-gpu.json

Exit status: 0 when every target that applies holds, 1 when one fails, 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import sys

BACKPROP_PEAK_FRACTION = 0.75
EXACT_RATIO = 1.25
CG_SLACK = 1.1
GPU_EPOCH_S = 0.5
#: the flop-floor targets: exact under one competing process, and CG-k against its own flop floor
EXACT_RATIO_LOADED = 1.5
CG_FLOOR_SLACK = 1.25
#: the setting the targets are set for
PAPER_MLP = [3072, 4000, 1000, 4000, 10]
PAPER_BATCH, PAPER_DTYPE = 500, "float32"


def target_ratio(row):
    """The step-cost bound on step / BackProp step for one mode row (None: no target for it)."""
    if row["solver"] == "exact":
        return EXACT_RATIO
    if row["solver"] == "cg":
        return CG_SLACK * (3 + 2 * row["cg_iterations"]) / 3
    return None


def cost_targets(rows, backend):
    """The step-cost targets, checked against the mode rows of one run (BackProp first).

    Returns
    -------
    list of dicts ``{"claim", "value", "bound", "holds"}``, with ``"matrix_floor"`` (the
    analytic flop ratio) for the ratio targets and ``"gpu": True`` for the GPU's epoch targets
    (CuPy results only).
    """
    bp = rows[0]
    targets = [{"claim": f"BackProp step at >= {BACKPROP_PEAK_FRACTION:.0%} of the GEMM peak",
                "value": bp["fraction_of_peak"], "bound": BACKPROP_PEAK_FRACTION,
                "holds": bp["fraction_of_peak"] >= BACKPROP_PEAK_FRACTION}]
    for row in rows[1:]:
        bound = target_ratio(row)
        if bound is None:
            continue
        k = row["cg_iterations"]
        claim = (f"exact step <= {EXACT_RATIO}x BackProp" if row["solver"] == "exact" else
                 f"CG-{k} step <= {CG_SLACK} x (3 + 2*{k})/3 = {bound:.2f}x BackProp")
        targets.append({"claim": claim, "value": row["ratio_to_backprop"], "bound": bound,
                        "matrix_floor": row["matrix_floor_ratio"],
                        "holds": row["ratio_to_backprop"] <= bound})
    if backend == "cupy":  # the GPU target: the time of an epoch, BackProp and exact
        targets += [{"claim": f"{row['label']} epoch of 45,000 images < {GPU_EPOCH_S} s on "
                              "the GPU", "value": row["epoch_s"], "bound": GPU_EPOCH_S,
                     "holds": row["epoch_s"] < GPU_EPOCH_S, "gpu": True}
                    for row in rows if row["solver"] in ("backprop", "exact")]
    return targets


def floor_targets(result):
    """The flop-floor targets for one CPU run: exact <= 1.25x BackProp quiet and <= 1.5x under one
    competing process (``bench --load 1``); every CG-k <= 1.25x its own flop floor (quiet)."""
    load = result["config"].get("load", 0)
    if result["config"]["backend"] != "numpy" or load > 1:
        return []
    targets = []
    for row in result["modes"][1:]:
        if row["solver"] == "exact":
            bound = EXACT_RATIO if load == 0 else EXACT_RATIO_LOADED
            targets.append({"claim": f"exact step <= {bound}x BackProp "
                                     f"({'quiet' if load == 0 else 'one competing process'})",
                            "value": row["ratio_to_backprop"], "bound": bound,
                            "matrix_floor": row["matrix_floor_ratio"],
                            "holds": row["ratio_to_backprop"] <= bound})
        elif row["solver"] == "cg" and load == 0 and row.get("ratio_to_floor") is not None:
            targets.append({"claim": f"CG-{row['cg_iterations']} step <= {CG_FLOOR_SLACK}x its "
                                     "flop floor", "value": row["ratio_to_floor"],
                            "bound": CG_FLOOR_SLACK, "holds": row["ratio_to_floor"] <= CG_FLOOR_SLACK})
    return targets


def applies(result):
    """Is the result's setting the one the targets are set for (the paper MLP, batch 500, float32)?"""
    cfg = result["config"]
    return (cfg["model"] == PAPER_MLP and cfg["batch_size"] == PAPER_BATCH
            and cfg["dtype"] == PAPER_DTYPE)


def _line(t):
    floor = f", flop floor {t['matrix_floor']:.2f}" if t.get("matrix_floor") is not None else ""
    return f"  [{'ok' if t['holds'] else 'FAIL'}] {t['claim']}: {t['value']:.2f}{floor}"


def format_targets(result, targets=None):
    """The targets of one result as text, one ``[ok]`` / ``[FAIL]`` line each."""
    cfg = result["config"]
    if targets is None:
        targets = cost_targets(result["modes"], cfg["backend"])
    paper = applies(result)
    cpu = [t for t in targets if not t.get("gpu")]
    gpu = [t for t in targets if t.get("gpu")]
    load = cfg.get("load", 0)
    lines = [f"step-cost targets (set for a quiet machine; this run had {load} competing "
             "process(es), so for reference only):" if load else
             "step-cost targets (ratios within this run):"
             if paper and cfg["backend"] == "numpy" else
             "step-cost targets (set for the paper MLP, batch 500, float32, on the CPU; "
             "shown here for reference only):"]
    lines += [_line(t) for t in cpu]
    later = floor_targets(result)
    if later:
        lines += ["flop-floor targets" + ("" if paper else " (for reference only)") + ":"]
        lines += [_line(t) for t in later]
    if gpu:
        lines += ["targets on the GPU (for the paper MLP, batch 500, float32):"
                  if paper else "targets on the GPU (set for the paper MLP, batch 500, "
                  "float32; shown here for reference only):"]
        lines += [_line(t) for t in gpu]
    return "\n".join(lines)


def check(result):
    """``(text, ok)``: the targets as text, and whether every target that applies holds."""
    targets = cost_targets(result["modes"], result["config"]["backend"])
    on_cpu = result["config"]["backend"] == "numpy"
    binding = [t for t in targets if applies(result) and (t.get("gpu") or on_cpu)]
    if result["config"].get("load", 0):  # the step-cost targets are for a quiet machine
        binding = [t for t in binding if t.get("gpu")]
    if applies(result):
        binding += floor_targets(result)
    return format_targets(result, targets), all(t["holds"] for t in binding)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/targets.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="*", help="bench results (JSON, from bench --json)")
    parser.add_argument("--run", nargs=argparse.REMAINDER, metavar="BENCH_OPTION",
                        help="run penaltyprop bench with the options that follow (all the "
                             "rest of the line), then check its result")
    args = parser.parse_args(argv)
    if not args.results and args.run is None:
        parser.error("give bench results (JSON) or --run")
    results = []
    for path in args.results:
        try:
            with open(path) as f:
                results.append((path, json.load(f)))
        except (OSError, ValueError) as err:
            print(f"benchmarks/targets.py: cannot read {path}: {err}", file=sys.stderr)
            return 2
    if args.run is not None:
        from penaltyprop.commands.bench import add_arguments, execute

        bench_parser = add_arguments(argparse.ArgumentParser(prog="penaltyprop bench"))
        result = execute(bench_parser.parse_args(args.run))  # prints the report
        results.append(("this run", result))
    ok = True
    for name, result in results:
        text, holds = check(result)
        print(f"\n{name}: {result['config']['network']}, batch {result['config']['batch_size']}, "
              f"{result['config']['dtype']}, {result['config']['backend']}\n{text}")
        ok = ok and holds
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
