"""The bench's tables: the GEMM peak, one row per mode, and where the time goes."""
from __future__ import annotations


def _num(value, fmt, scale=1.0):
    return "-" if value is None else format(value * scale, fmt)


def format_report(result):
    """The human-readable tables of a :func:`~penaltyprop.bench.benchmark` result."""
    mc, cfg, peak = result["machine"], result["config"], result["peak"]
    width = max(9, *(len(r["label"]) + 1 for r in result["modes"]))
    header = (f"{'mode':<{width}}{'median ms':>10}{'min':>8}{'max':>8}{'x BP':>7}{'floor':>7}"
              f"{'x floor':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'%peak':>7}{'mem MB':>8}{'epoch s':>9}")
    lines = [f"penaltyprop bench: {cfg['network']}",
             (f"batch {cfg['batch_size']}, {cfg['dtype']}, backend {cfg['backend']}, "
              f"{cfg['repetitions']} timed rounds (interleaved, after a warm-up)"),
             (f"machine: {mc['cpu']}, {mc.get('cores_usable', mc['cpu_count'])} cores usable; "
              f"numpy {mc['numpy']}; load average {_load(mc)}"),
             *([f"exact prox's Cholesky solve (CPU): {mc['spd_solve']}"]
               if cfg["backend"] == "numpy" and mc.get("spd_solve") else []),
             "",
             (f"GEMM peak (layer products alone): {peak['gflops']:.1f} GFLOP/s "
              f"(best single product {peak['best_gflops']:.1f}); BackProp's products alone: "
              f"{peak['backprop_gemm_floor_s'] * 1e3:.1f} ms"),
             "", header]
    for r in result["modes"]:
        mem = r.get("peak_memory_bytes")
        lines.append(
            f"{r['label']:<{width}}{r['median_s'] * 1e3:>10.1f}{r['min_s'] * 1e3:>8.1f}"
            f"{r['max_s'] * 1e3:>8.1f}{r['ratio_to_backprop']:>7.2f}"
            f"{_num(r['matrix_floor_ratio'], '.2f'):>7}{_num(r.get('ratio_to_floor'), '.2f'):>8}"
            f"{_num(r['gflop'], '.1f'):>8}"
            f"{_num(r['gflops'], '.1f'):>9}{_num(r['fraction_of_peak'], '.0f', 100):>7}"
            f"{_num(mem, '.0f', 2**-20):>8}{_num(r['epoch_s'], '.1f'):>9}")
    lines.append("x BP: median step / median BackProp step; floor: the analytic flop ratio; "
                 "x floor: x BP / floor; epoch s: 45,000 images")
    for r in result["modes"]:
        if r["matrix_floor_ratio"] is None:
            lines.append(f"{r['label']}: no floor (the method states no flop count)")
    if any(r.get("kind") == "lifted" for r in result["modes"]):
        lines.append(f"a lifted method's row is one full-batch sweep over the batch's "
                     f"{cfg['batch_size']} samples, against one BackProp step on all of them "
                     f"(one epoch-equivalent); its epoch s is not extrapolated")
    if result["breakdown"]:
        lines += ["", "where the time goes (pieces timed alone, summed over the hidden layers):"]
        for name, s in result["breakdown"].items():
            lines.append(f"  {name:<54}{s['median_s'] * 1e3:>9.1f} ms")
        lines.append(f"  {'mode':<{width}}{'measured':>10}  pieces (ms)")
        for r in result["modes"]:
            model = r.get("model_s")
            parts = ("no model for this method" if model is None else
                     ", ".join(f"{k} {v * 1e3:.1f}" for k, v in model.items())
                     + f" (sum {sum(model.values()) * 1e3:.1f})")
            lines.append(f"  {r['label']:<{width}}{r['median_s'] * 1e3:>10.1f}  {parts}")
    lines.append(f"wall time {result['wall_s']:.1f} s; max RSS "
                 f"{(result['maxrss_bytes'] or 0) / 2**20:.0f} MB")
    return "\n".join(lines)


def _load(mc):
    start, end = mc.get("load_average_start"), mc.get("load_average_end")
    if not start:
        return "n/a"
    return f"{start[0]:.2f} at start, {end[0]:.2f} at end" if end else f"{start[0]:.2f}"
