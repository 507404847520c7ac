"""Mutation check of the family tests: does each plausible wrong update fail some test?

Run from the repository root (it takes a few minutes)::

    python tests/family_mutations.py            # every mutation
    python tests/family_mutations.py B1 M3      # some of them

Each mutation replaces one piece of the methods' source text in a scratch copy of the package
(the original is never touched), then runs the family tests there twice: the tests that test
one claim each (test_family_bcd.py, test_family_admm.py, test_family_altmin.py) and all of them
(with test_family_block_optimality.py and test_family_reference_sweeps.py). It prints one
table row per mutation: caught (some test failed) or survived. Not collected by pytest.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLAIM_TESTS = ["tests/test_family_bcd.py", "tests/test_family_admm.py",
               "tests/test_family_altmin.py"]
ALL_TESTS = CLAIM_TESTS + ["tests/test_family_block_optimality.py",
                           "tests/test_family_reference_sweeps.py"]

BCD, ADMM, ALTMIN, LIFTED = ("penaltyprop/methods/bcd.py", "penaltyprop/methods/admm.py",
                             "penaltyprop/methods/altmin.py", "penaltyprop/methods/lifted.py")

#: id -> (description, file, [(old text, new text), ...]); each old text occurs exactly once
MUTATIONS = {
    "B1": ("BCD: skip the a-step", BCD, [(
        "a[l - 1] = lifted.a_step(theta[l - 1], z[l], net.blocks[l - 2].sigma(z[l - 1]), "
        "rho, gamma)", "pass")]),
    "B2": ("BCD: a-step with the old theta_l", BCD, [(
        "a[l - 1] = lifted.a_step(theta[l - 1], z[l],", "a[l - 1] = lifted.a_step((W, b), z[l],")]),
    "B3": ("BCD: drop the output block's prox term", BCD, [(
        "z[K] = lifted.output_prox(v, y, c, loss, output_steps, z0=z[K])",
        "z[K] = lifted.output_prox(m, y, rho, loss, output_steps, z0=z[K])")]),
    "B4": ("BCD: double the z-step's prox weight", BCD, [(
        "v = (rho * m + alpha * z[l - 1]) / c\n        z[l - 1] = lifted.relu_prox(a[l - 1], v, "
        "gamma, c)", "v = (rho * m + 2 * alpha * z[l - 1]) / (rho + 2 * alpha)\n        "
        "z[l - 1] = lifted.relu_prox(a[l - 1], v, gamma, rho + 2 * alpha)")]),
    "B5": ("BCD: theta-step with tau_theta = alpha/rho", BCD, [(
        "prox_exact(a[l - 1], delta, rho / alpha, system)",
        "prox_exact(a[l - 1], delta, alpha / rho, system)")]),
    "B6": ("BCD: z-step without its prox term", BCD, [(
        "z[l - 1] = lifted.relu_prox(a[l - 1], v, gamma, c)",
        "z[l - 1] = lifted.relu_prox(a[l - 1], m, gamma, rho)")]),
    "B7": ("BCD: a-step towards z_{l-1} instead of relu(z_{l-1})", BCD, [(
        "net.blocks[l - 2].sigma(z[l - 1]), rho, gamma)", "z[l - 1], rho, gamma)")]),
    "B8": ("BCD split output: z_K-step with weight 1 for gamma", BCD, [(
        "z[K] = (gamma * a[K] + rho * m) / (gamma + rho)", "z[K] = (a[K] + rho * m) / (1 + rho)")]),
    "L1": ("ReLU prox: always the z >= 0 candidate", LIFTED, [(
        "return xp.where(f_pos <= f_neg, z_pos, z_neg)", "return z_pos")]),
    "A1": ("ADMM: multiplier assigned, not accumulated", ADMM, [(
        "lam = beta * r if lam is None else lam + beta * r", "lam = beta * r")]),
    "A2": ("ADMM: z_K-step ignores the multiplier", ADMM, [(
        "v = m if lam is None else m - lam / beta", "v = m")]),
    "A3": ("ADMM: multiplier step 2 beta", ADMM, [(
        "lam = beta * r if lam is None else lam + beta * r",
        "lam = 2 * beta * r if lam is None else lam + 2 * beta * r")]),
    "A4": ("ADMM: a-step with beta and gamma swapped", ADMM, [(
        "a[l] = lifted.a_step(theta[l], z[l + 1], blk.sigma(z[l]), beta, gamma)",
        "a[l] = lifted.a_step(theta[l], z[l + 1], blk.sigma(z[l]), gamma, beta)")]),
    "A5": ("ADMM: z-step with the old theta_l", ADMM, [
        ("        theta[l - 1] = least_squares_step(theta[l - 1], a[l - 1], z[l], ridge)\n",
         "        theta_old = theta[l - 1]\n"
         "        theta[l - 1] = least_squares_step(theta[l - 1], a[l - 1], z[l], ridge)\n"),
        ("lifted.relu_prox(a[l], blk.phi(theta[l - 1], a[l - 1]), gamma, beta)",
         "lifted.relu_prox(a[l], blk.phi(theta_old, a[l - 1]), gamma, beta)")]),
    "A6": ("ADMM: least-squares ridge centred at 0, not theta^k", ADMM, [(
        "dW, db = prox_exact(a_prev, apply_A(W, b, a_prev) - z_l, 1.0 / eps)",
        "dW, db = prox_exact(a_prev, apply_A(0 * W, 0 * b, a_prev) - z_l, 1.0 / eps)\n"
        "    dW, db = dW - W, db - b")]),
    "M1": ("AltMin: drop the anchor term from the code gradient", ALTMIN, [(
        "return sigma.vjp(z, phi_up.adjoint_a(theta[l], g)) + w_anchor * (z - z0)",
        "return sigma.vjp(z, phi_up.adjoint_a(theta[l], g))")]),
    "M2": ("AltMin: double the anchor term", ALTMIN, [(
        "return sigma.vjp(z, phi_up.adjoint_a(theta[l], g)) + w_anchor * (z - z0)",
        "return sigma.vjp(z, phi_up.adjoint_a(theta[l], g)) + 2 * w_anchor * (z - z0)")]),
    "M3": ("AltMin: start the code steps from the updated anchor (codes alias the anchors)",
           ALTMIN, [("    z = list(z0)\n    for l in range(K - 1, 0, -1):",
                     "    z = z0\n    for l in range(K - 1, 0, -1):")]),
    "M9": ("AltMin: the anchor moves to the code after its first step", ALTMIN, [
        ("g = code_gradient(net, theta, l, z[l], z_above, z0[l], y, mu, penalty_scale)",
         "g = code_gradient(net, theta, l, z[l], z_above, z0[l] if step == 1 else z1, y, mu, "
         "penalty_scale)"),
        ("            z[l] = z[l] - inner_lr * g\n",
         "            z[l] = z[l] - inner_lr * g\n            z1 = z[l] if step == 1 else z1\n")]),
    "M4": ("AltMin: codes bottom-up", ALTMIN, [(
        "    for l in range(K - 1, 0, -1):  # l = K-1 .. 1\n        z_above",
        "    for l in range(1, K):\n        z_above")]),
    "M5": ("AltMin: middle codes target the forward code above", ALTMIN, [(
        "z_above = z[l + 1] if l < K - 1 else None", "z_above = z0[l + 1] if l < K - 1 else None")]),
    "M6": ("AltMin: heavy-ball instead of Nesterov momentum", ALTMIN, [(
        "g = g + inner_momentum * b  # Nesterov", "g = b")]),
    "M7": ("AltMin: weight steps at the forward inputs whatever inputs says", ALTMIN, [(
        'if inputs == "forward" or l == 1:', "if True:")]),
    "M8": ("AltMin (source's scale): hidden weight factor 1/(N n_l)", ALTMIN, [(
        "c = mu / N if penalty_scale == \"sum\" else 2.0 / (N * _units(z[l]))",
        "c = mu / N if penalty_scale == \"sum\" else 1.0 / (N * _units(z[l]))")]),
}


def run_tests(root, tests):
    """True when every test passes in the scratch copy at ``root``."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(root),
                                 "OPENBLAS_NUM_THREADS": "1"})
    return result.returncode == 0


def mutate(root, path, edits):
    target = root / path
    text = target.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise SystemExit(f"mutation text not found exactly once in {path}: {old[:60]!r}")
        text = text.replace(old, new)
    target.write_text(text)


def scratch_copy(scratch):
    root = Path(scratch)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "penaltyprop", root / "penaltyprop", ignore=ignore)
    shutil.copytree(ROOT / "tests", root / "tests", ignore=ignore)
    return root


def main(ids):
    with tempfile.TemporaryDirectory() as scratch:  # the unmutated copy must pass
        if not run_tests(scratch_copy(scratch), ALL_TESTS):
            raise SystemExit("the family tests fail without any mutation; fix them first")
    print("| id | mutation | claim tests | all family tests |")
    print("|---|---|---|---|")
    for key in ids:
        description, path, edits = MUTATIONS[key]
        with tempfile.TemporaryDirectory() as scratch:
            root = scratch_copy(scratch)
            mutate(root, path, edits)
            claims = "survived" if run_tests(root, CLAIM_TESTS) else "caught"
            every = "survived" if run_tests(root, ALL_TESTS) else "caught"
        print(f"| {key} | {description} | {claims} | {every} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(MUTATIONS))
