"""Why AltMin with mu = 1 does not train on CIFAR-10 in the family comparison (docs/family.md).

    python benchmarks/altmin_cifar10.py --data-dir data [--out docs/results/altmin-cifar10-study.json]

The family's small CIFAR-10 setting (4,000 training images, MLP 3072-500-500-10, batch 100,
20 epochs, seed 0) trained with:

* AltMin (mu = 1, 5 code steps of 1/mu) and Adam at the source's rate 0.008, constant and
  halved every 8 epochs; at Adam's usual 1e-3; with the code steps off (inner_steps = 0);
* AltMin with the source's settings (``AltMin.source()``), Adam 0.008 constant;
* BackProp with the same Adam 0.008 (what the rate does without code steps).

and, for the first minibatches of AltMin (mu = 1) at both Adam rates: the squared spectral norm
of W_2 and the middle code's local objective f_1 before and after each of its five steps (an
explicit gradient step of size 1/mu is stable only while 1/mu < 2 / (mu (1 + ||W_2||^2))).
Writes one JSON file in the layout of the experiments' results (``runs`` with per-epoch
histories) plus ``steps`` (the per-minibatch diagnostics). About 10 minutes on two CPU cores.
"""
import argparse
import json
import time

import penaltyprop as pp
from penaltyprop.backend import numpy as np
from penaltyprop.data import batch_last
from penaltyprop.methods.altmin import code_objective, code_steps

N_TRAIN, HIDDEN, BATCH, EPOCHS, SEED, LR = 4000, (500, 500), 100, 20, 0, 0.008
STEPS_PER_EPOCH = -(-N_TRAIN // BATCH)

RUNS = {  # key -> (method, Adam rate, halve_every)
    "altmin": (pp.AltMin(), LR, None),
    "altmin-halving": (pp.AltMin(), LR, 8 * STEPS_PER_EPOCH),
    "altmin-lr1e-3": (pp.AltMin(), 1e-3, None),
    "altmin-no-code-steps": (pp.AltMin(inner_steps=0), LR, None),
    "altmin-source-constant": (pp.AltMin.source(), LR, None),
    "backprop-adam": (pp.BackProp(), LR, None),
}


def train_runs(data, log):
    runs = {}
    for key, (method, lr, halve) in RUNS.items():
        t0 = time.perf_counter()
        result = pp.train.train(pp.mlp([data.n_features, *HIDDEN, data.n_classes]), data,
                                pp.optim.adam(lr, halve_every=halve), method, batch_size=BATCH,
                                epochs=EPOCHS, seed=SEED)
        runs[key] = {"method": method.label, "method_options": method.config(),
                     "optimizer": {"lr": lr, "halve_every": halve},
                     "history": result.history, "wall_s": time.perf_counter() - t0}
        log(f"{key}: final loss {result.history['train_loss'][-1]:.3f}, test acc "
            f"{result.history['test_acc']:.3f}")
    return runs


def code_diagnostics(data, lr, n_steps=6):
    """Per minibatch: ||W_2||^2 and f_1 (the middle code's objective) along its code steps."""
    X = batch_last(data.X_train)
    net = pp.mlp([data.n_features, *HIDDEN, data.n_classes])
    theta = net.init(seed=SEED, dtype=str(X.dtype))
    method, opt = pp.AltMin(), pp.optim.adam(lr)
    state = opt.init(theta)
    order = np.random.default_rng(SEED).permutation(X.shape[1])
    rows = []
    for step in range(n_steps):
        idx = order[step * BATCH:(step + 1) * BATCH]
        Xb, yb = X[:, idx], data.y_train[idx]
        _, z0 = pp.forward(net, theta, Xb)
        f1 = []
        for l, s, z in code_steps(net, theta, z0, yb, method.mu, method.inner_steps,
                                  method.step_size):
            if l == 1:
                if s == 1:
                    f1.append(float(code_objective(net, theta, 1, z0[1], z[2], z0[1], yb, 1.0)))
                f1.append(float(code_objective(net, theta, 1, z[1], z[2], z0[1], yb, 1.0)))
        J, d = method.direction(net, theta, Xb, yb)
        rows.append({"step": step, "loss": float(J),
                     "w2_norm_sq": float(np.linalg.norm(theta[1][0], 2) ** 2),
                     "f1_along_code_steps": f1, "dead_units_1": dead_fraction(z0[1])})
        theta, state = opt.update(theta, d, state)
    return rows


def dead_fraction(z):
    """The fraction of a layer's ReLU units that are inactive on every sample of the batch."""
    return float((z <= 0).all(axis=1).mean())


def backprop_dead_units(data, lr, n_steps):
    """Layer 1's dead fraction after each of BackProp's first Adam steps at rate ``lr``."""
    X = batch_last(data.X_train)
    net = pp.mlp([data.n_features, *HIDDEN, data.n_classes])
    theta = net.init(seed=SEED, dtype=str(X.dtype))
    opt = pp.optim.adam(lr)
    state = opt.init(theta)
    order = np.random.default_rng(SEED).permutation(X.shape[1])
    fractions = []
    for step in range(n_steps):
        idx = order[step * BATCH:(step + 1) * BATCH]
        _, d = pp.BackProp().direction(net, theta, X[:, idx], data.y_train[idx])
        theta, state = opt.update(theta, d, state)
        fractions.append(dead_fraction(pp.forward(net, theta, X[:, idx])[1][1]))
    return fractions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="docs/results/altmin-cifar10-study.json")
    args = parser.parse_args()
    data = pp.data.load_dataset("cifar10", data_dir=args.data_dir, subset=N_TRAIN)
    out = {"settings": {"n_train": N_TRAIN, "hidden": list(HIDDEN), "batch_size": BATCH,
                        "epochs": EPOCHS, "seed": SEED, "data": repr(data)},
           "steps": {f"adam{1000 * lr:g}e-3": code_diagnostics(data, lr) for lr in (LR, 1e-3)},
           "backprop_dead_units_1": backprop_dead_units(data, LR, 8),
           "runs": train_runs(data, print)}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
