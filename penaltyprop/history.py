r"""What a training run records: per-epoch histories, evaluations, and one line per epoch.

After every epoch the run records what the paper plots (Figs. 2, 3; Table 1): the full-batch
training loss and accuracy, the validation loss and accuracy, the epoch's training time (the
evaluation is timed separately) and the cumulative training time; the test loss and accuracy
at the end. Lifted methods also record their objective and constraint residuals per sweep.
"""
from __future__ import annotations

from .backend import to_float
from .forward import logits
from .losses import cross_entropy

#: the per-epoch lists of a history, in the order :func:`format_epoch` prints them
SERIES = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "batch_loss",
          "epoch_time", "eval_time", "time")


def new_history() -> dict:
    """An empty history (see :class:`penaltyprop.train.TrainResult`)."""
    history = {key: [] for key in SERIES}
    history.update(test_loss=None, test_acc=None, diverged=False, diverged_epoch=None,
                   diverged_reason=None, steps=0, diagnostics=[])
    return history


def check_history(history) -> None:
    """Raise ValueError saying what is wrong with a history read back from a checkpoint.

    Its per-epoch series are lists of numbers (``batch_loss`` starts with None) of one length,
    ``epoch`` counts 0, 1, 2, ...; ``diverged`` is a bool, ``diverged_epoch`` and ``steps``
    integers (or None), ``diverged_reason`` a string (or None). A history that breaks this
    would continue the run wrongly (a shorter ``epoch`` list redid epochs) or crash it.
    """
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for key in SERIES:
        values = history.get(key)
        if not isinstance(values, list) or not all(
                number(v) or (v is None and key == "batch_loss") for v in values):
            raise ValueError(f"history {key} is not a list of numbers")
    lengths = {len(history[key]) for key in SERIES}
    if len(lengths) != 1:
        raise ValueError(f"history series have different lengths ({sorted(lengths)})")
    if history["epoch"] != list(range(len(history["epoch"]))):
        raise ValueError("history epoch does not count 0, 1, 2, ...")
    if not isinstance(history.get("diverged"), bool):
        raise ValueError(f"history diverged is {history.get('diverged')!r}, not true or false")
    for key, kinds in (("diverged_epoch", int), ("steps", int), ("diverged_reason", str)):
        value = history.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ValueError(f"history {key} is {value!r}, not {kinds.__name__} or None")
    if not isinstance(history.get("diagnostics", []), list):
        raise ValueError("history diagnostics is not a list")


def evaluate(net, theta, X, y, chunk=5000):
    r"""Mean loss :math:`J(\theta; X, y)` and accuracy over all columns of X, ``chunk`` at a time.

    Parameters
    ----------
    X : array, shape (n0, N) or (C, H, W, N)
        Not checked (the loop checked it and y).
    y : array, shape (N,)
        Labels.
    chunk : int
        Columns per forward pass (bounds the memory of the activations).

    Returns
    -------
    (loss, accuracy) : tuple of float
        As host floats; (None, None) for N = 0.
    """
    N = y.shape[0]
    if N == 0:
        return None, None
    total_loss, correct = 0.0, 0
    for s in range(0, N, chunk):
        Xc, yc = X[..., s:s + chunk], y[s:s + chunk]  # (n0, n) view, (n,)
        scores = logits(net, theta, Xc)  # (C, n)
        total_loss = total_loss + cross_entropy(scores, yc) * yc.shape[0]  # stays on the device
        correct = correct + (scores.argmax(axis=0) == yc).sum()
    return to_float(total_loss) / N, to_float(correct) / N  # the only host syncs


def format_epoch(record) -> str:
    """One line for an epoch record (see ``on_epoch`` of :func:`penaltyprop.train.train`)."""
    if record.get("diverged"):
        return f"epoch {record['epoch']:>3}: diverged ({record.get('reason')})"
    line = (f"epoch {record['epoch']:>3}: train loss {record['train_loss']:.4f} "
            f"acc {100 * record['train_acc']:5.1f}%  val loss {record['val_loss']:.4f} "
            f"acc {100 * record['val_acc']:5.1f}%")
    if record["epoch"] > 0:
        line += f"  time {record['epoch_time']:.2f}s (eval {record['eval_time']:.2f}s)"
    return line
