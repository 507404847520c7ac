r"""How much memory a run needs, estimated before it starts, against what the machine has.

A model or batch far too large for the machine (``--model 64-100000000-10``, a batch of a
billion) should be refused at once with both numbers, not fail minutes later with a raw
MemoryError, or, worse, be killed by the kernel after the allocator overcommitted.

:func:`run_bytes` counts what a training run surely holds at once, part by part, from the
shapes alone (nothing is allocated):

* ``data``: the run's copy of the training, validation and test samples on the device;
* ``parameters``: theta, the new theta (or the direction) and the optimizer's buffers
  (momentum: one copy of theta, Adam: two);
* ``activations``: :math:`a_l` and :math:`z_l` of every layer for one minibatch, and one
  layer's backward delta (a lifted method: its per-sample variables for all N samples, the
  old and the new ones); one layer of the evaluation's forward pass over ``eval_chunk``;
* ``solver``: the linear systems of the prox step (the smaller of the primal and the batch
  Gram matrix per layer, Eq. 44) and, for a lifted method, of its a-step.

It is a lower bound: temporaries, im2col blocks and the library's own buffers come on top.
So a refusal is always right; a run that passes may still run out, and the command line
then reports the MemoryError in one line. :func:`check_memory` compares the estimate with
:func:`penaltyprop.backend.instruments.memory_info`.
"""
from __future__ import annotations

import math

from .backend import numpy as np
from .backend.instruments import memory_info

GIB = 1 << 30


def _size(shape) -> int:
    return math.prod(int(n) for n in shape)


def layer_sizes(net):
    """Per linear layer: ``(weights, n_out, m, z per sample, a per sample)`` from the shapes:
    W's entries, b's length, the patch rows m (Eq. 44's n_{l-1} + 1 is m + 1) and the sizes of
    :math:`z_l` and :math:`a_l` for one sample."""
    out = []
    for blk in net.blocks:
        phi = blk.phi
        z_shape = tuple(phi.out_shape)
        a_shape = tuple(blk.sigma.out_shape(z_shape)) if hasattr(blk.sigma, "out_shape") \
            else z_shape
        weights = _size(phi.weight_shape)
        out.append((weights, phi.n_out, weights // phi.n_out, _size(z_shape), _size(a_shape)))
    return out


def run_bytes(net, n_samples, batch_size, dtype, *, lifted=False, optimizer_slots=0,
              prox=False, eval_chunk=5000) -> dict:
    """Bytes a training run holds at least, part by part (see the module docstring).

    Parameters
    ----------
    net : Network
        The network.
    n_samples : int
        Training + validation + test samples (the run's device copy of the data).
    batch_size : int
        The minibatch (a lifted method: N, all training samples).
    dtype : {"float32", "float64"}
        The floating dtype of the run.
    lifted : bool
        A lifted method (per-sample variables for all N).
    optimizer_slots : int
        Buffers of theta's size the optimizer keeps (0, 1 or 2).
    prox : bool
        The method solves Eq. 44 (ProxProp, the lifted methods' theta-step).
    eval_chunk : int
        Samples per forward pass of the evaluation.

    Returns
    -------
    dict
        ``{"data", "parameters", "activations", "solver": bytes}``.
    """
    s = np.dtype(dtype).itemsize
    layers = layer_sizes(net)
    n_params = sum(w + n_out for w, n_out, _, _, _ in layers)
    per_sample = _size(net.input_shape) + sum(z + a for _, _, _, z, a in layers)
    B = int(batch_size)
    solver = 0
    if prox or lifted:  # the Gram matrix of Eq. 44, primal (m+1)^2 or batch B^2, the smaller
        solver = max(min(m + 1, B) ** 2 for _, _, m, _, _ in layers)
    if lifted:  # the a-step's (rho W^T W + gamma I), n_in or n_out square, the smaller
        solver = max(solver, *(min(m, n_out) ** 2 for _, n_out, m, _, _ in layers))
    widest = max(z + a for _, _, _, z, a in layers)  # one layer's z and a, per sample
    held = 2 * B * per_sample if lifted else B * (per_sample + widest)  # + the deltas
    return {"data": n_samples * _size(net.input_shape) * s,
            "parameters": n_params * s * (2 + optimizer_slots),
            "activations": (held + min(eval_chunk, n_samples) * widest) * s,
            "solver": solver * s}


def format_bytes(n) -> str:
    """``"1.5 TiB"``, ``"25.6 GiB"``, ``"310 MiB"``, ``"12 KiB"``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def check_memory(parts, xp, what="the run") -> None:
    """Raise ValueError when the estimate ``parts`` (bytes by part) exceeds the memory the
    backend ``xp`` has available now, naming the estimate, its largest part, and the
    machine's available and total memory. Where the memory is unknown, nothing is checked."""
    total, available = memory_info(xp)
    if available is None:
        return
    need = sum(parts.values())
    if need <= available:
        return
    where = "the GPU" if xp is not np else "this machine"
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted(parts.items(),
                                                                   key=lambda kv: -kv[1]) if v)
    raise ValueError(f"{what} needs at least {format_bytes(need)} of memory ({detail}), but "
                     f"{where} has {format_bytes(available)} available of "
                     f"{format_bytes(total)}; use a smaller model, batch or data set")
