r"""What every exercise check shares: the verdict, the harness, and the comparisons.

A check takes the student's function, runs it on random problems of several shapes in float64,
and compares what it returns with the package or with the mathematics. It answers with a
:class:`Verdict`, one or two lines:

* ``right``: it agrees everywhere, and the largest difference is shown;
* ``wrong``: what differs, on which problem, with a hint tied to the equation;
* ``not done``: the function still raises ``NotImplementedError`` (the placeholder).

The check bodies raise :class:`Wrong` (or let :class:`NotDone` through from :func:`call`) and
return ``(largest difference, number of problems)``; :func:`checker` turns that into a Verdict.

**The package's own answer.** A check compares with the package, so an answer that calls the
package's code for what the exercise asks (``prox_exact`` for the prox step, ``Conv2d.patches``
for im2col, ...) would agree with it and prove nothing: :func:`call` watches the student's
function with a profile hook and calls such an answer wrong, naming what it called. The array
backend and the layer maps (:mod:`penaltyprop.transfer`: phi and its adjoint) stay allowed.
NumPy itself cannot be watched: an eigenvalue solver in place of the power iteration passes.

**Strict mode.** With the environment variable ``PENALTYPROP_CHECKS=strict`` a check that is not
right raises AssertionError with its message. The test suite runs the notebooks, solutions
included, that way (``notebooks/conftest.py``), so a solution that stops passing its check fails
the tests; a lecturer can run a student's notebook that way to stop at the first open exercise.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

from ..backend import numpy as np

#: the environment variable that makes a check raise unless the answer is right
STRICT_ENV = "PENALTYPROP_CHECKS"

#: Two float64 computations of the same formula along different paths (a Cholesky solve or
#: an explicit loop, sums in another order) agree to about 1e-13 relative on these small,
#: well-conditioned problems (condition numbers below 1e4). 1e-8 relative to the size of the
#: expected answer leaves room for every correct way of writing it, while each mistake the
#: checks know changes the answer by at least 1e-3 relative (the tests hold both).
RTOL = 1e-8

STATUSES = ("right", "wrong", "not done")


@dataclass(frozen=True)
class Verdict:
    """The answer of a check.

    Attributes
    ----------
    exercise : str
        The exercise's name (the function the student writes).
    status : {"right", "wrong", "not done"}
        The verdict.
    message : str
        One or two lines; ``str(verdict)`` and the notebook display show it.
    largest_difference : float or None
        The largest absolute difference to the expected answer (over all problems when
        right; on the failing problem when wrong).
    """

    exercise: str
    status: str
    message: str
    largest_difference: float | None = None

    @property
    def right(self) -> bool:
        return self.status == "right"

    def __str__(self):
        return self.message

    __repr__ = __str__  # a notebook cell that ends with the check shows the message itself


class NotDone(Exception):
    """The student's function raised NotImplementedError: the exercise is not attempted yet."""


class Wrong(Exception):
    """The answer is wrong: ``what`` differs, ``hint`` says where to look (both one line).

    ``known`` is True when the answer reproduces a known mistake (the hint names it).
    """

    def __init__(self, what, hint=None, difference=None, known=False):
        super().__init__(what)
        self.what, self.hint, self.difference, self.known = what, hint, difference, known


def strict() -> bool:
    """Whether ``$PENALTYPROP_CHECKS`` is ``strict`` (a check that is not right raises)."""
    return os.environ.get(STRICT_ENV, "").strip().lower() == "strict"


def checker(exercise, reference, class_name=None):
    """Decorator turning a check body into a check that answers with a :class:`Verdict`.

    Parameters
    ----------
    exercise : str
        The name of the function the student writes (for a class: the exercise's name, which
        is also the method's registry name).
    reference : str
        What the answer is compared with, for the "right" line (e.g. ``"Eq. 44"``,
        ``"Proposition 1"``).
    class_name : str or None
        The class the student writes, when the exercise is a class (a training method) rather
        than a function: the check then takes a class.

    Notes
    -----
    The body is ``body(student) -> (largest_difference, n_problems)``, optionally with a
    sentence more for the "right" line; it raises :class:`Wrong` and lets :class:`NotDone`
    through. The check's attribute ``takes`` is the name the student defines (``class_name``,
    else ``exercise``); grading looks it up in the student's kernel.
    """

    def wrap(body):
        @functools.wraps(body)
        def check(student):
            if class_name is not None and not isinstance(student, type):
                got = "function" if callable(student) else f"{type(student).__name__} object"
                raise TypeError(f"check_{exercise} takes your method class itself, as in "
                                f"check_{exercise}({class_name}), not a {got}")
            if not callable(student):
                raise TypeError(f"check_{exercise} takes your function itself, as in "
                                f"check_{exercise}({exercise}), not a {type(student).__name__}")
            try:
                diff, n, *more = body(student)
                verdict = Verdict(exercise, "right",
                                  f"{exercise}: right. It agrees with {reference} on {n} random "
                                  f"problems (largest difference {diff:.1e})."
                                  + "".join(f" {sentence}" for sentence in more), diff)
            except NotDone:
                verdict = Verdict(exercise, "not done",
                                  f"{exercise}: not done yet (it raises NotImplementedError). "
                                  "Write it in the cell above and run this check again.")
            except Wrong as w:
                verdict = Verdict(exercise, "wrong", f"{exercise}: wrong. {w.what}"
                                  + (f"\n  Hint: {w.hint}" if w.hint else ""), w.difference)
            if strict() and not verdict.right:
                raise AssertionError(verdict.message)
            return verdict

        check.takes = class_name or exercise  # the name the student's notebook defines
        return check

    return wrap


# --------------------------------------------------------------------------- calling
#: words in a NumPy error that mean two shapes did not fit together
SHAPE_WORDS = ("matmul", "shape", "broadcast", "aligned", "dimension", "size")


#: the checks' own module: its reference answers are never the student's (always refused)
REFERENCE = "penaltyprop.exercises"


def first_call_into(modules):
    """A profile hook and the list it fills with the first function it sees called from one of
    ``modules`` (module names; their submodules count too), as ``"module.qualified_name"``."""
    seen = []

    def hook(frame, event, arg):
        if event != "call" or seen:
            return
        module = frame.f_globals.get("__name__", "")
        if any(module == m or module.startswith(m + ".") for m in modules):
            code = frame.f_code
            seen.append(f"{module}.{getattr(code, 'co_qualname', code.co_name)}")

    return hook, seen


def call(student, args, problem, shape_hint="is a product transposed, or the row of ones "
                                            "in A = [a; 1^T] missing?", answers=None):
    """``student(*args)`` on copies of the arrays; NotImplementedError -> :class:`NotDone`,
    any other exception -> :class:`Wrong` naming it and the problem.

    ``answers``: the package's modules that compute what the exercise asks the student to write
    (``("penaltyprop.prox",)``). When it is given, a call from the student's function into one of
    them, or into the checks' own :data:`REFERENCE`, is Wrong: the check compares with the
    package, so an answer that calls it proves nothing. None (the default): not watched (a
    method class's direction may use the whole package).
    """
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    hook, seen = first_call_into((REFERENCE, *answers)) if answers is not None else (None, [])
    previous = sys.getprofile()
    try:
        with np.errstate(all="ignore"):  # overflow in a wrong answer is reported, not warned
            if hook is not None:
                sys.setprofile(hook)  # sees every Python function the student's code calls
            try:
                out = student(*copies)
            finally:
                if hook is not None:
                    sys.setprofile(previous)
    except NotImplementedError:
        raise NotDone() from None
    except Exception as err:  # the student's code: any error is an answer to report
        text = " ".join(str(err).split())[:160]
        hint = shape_hint if any(w in text.lower() for w in SHAPE_WORDS) else \
            "call it yourself on arrays of these shapes to see the traceback"
        raise Wrong(f"It raised {type(err).__name__}: {text} ({problem}).", hint) from None
    if seen:
        raise Wrong(f"It calls {seen[0]}, the package's own code for what this exercise asks "
                    f"you to write ({problem}).", "write it yourself, in NumPy: the check compares "
                    "with the package, so an answer that calls the package proves nothing.",
                    known=True)
    return out


def unpack(out, names, problem):
    """The student's return value as a tuple of ``len(names)`` entries, or Wrong."""
    if len(names) == 1:
        return (out,)
    if not isinstance(out, (tuple, list)) or len(out) != len(names):
        got = f"{len(out)} values" if isinstance(out, (tuple, list)) else type(out).__name__
        raise Wrong(f"It should return {len(names)} values ({', '.join(names)}), "
                    f"got {got} ({problem}).")
    return tuple(out)


def as_array(x, name, shape, problem, meaning=""):
    """``x`` as a float64 array of ``shape``, or Wrong (a transposed shape says so)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"{name} should be an array of shape {shape}, got {type(x).__name__} "
                    f"({problem}).") from None
    if arr.shape != tuple(shape):
        hint = "is a product transposed?" if arr.shape == tuple(shape)[::-1] and len(shape) == 2 \
            else None
        raise Wrong(f"{name} has shape {arr.shape}, expected {tuple(shape)}{meaning} "
                    f"({problem}).", hint)
    if not np.all(np.isfinite(arr)):
        raise Wrong(f"{name} contains NaN or inf ({problem}).",
                    "a division by zero, or a step that blows up?")
    return arr


def difference(got, want):
    """The largest absolute difference of two arrays (0 for empty ones)."""
    return float(np.abs(got - want).max()) if got.size else 0.0


def close(got, want):
    """Whether ``got`` agrees with ``want`` to :data:`RTOL` relative to want's size."""
    return difference(got, want) <= RTOL * (1.0 + float(np.abs(want).max(initial=0.0)))


def matching_mistake(got, mistakes):
    """The hint of the first known mistake that explains every wrong output, else None.

    Parameters
    ----------
    got : dict name -> array
        The student's outputs that are wrong.
    mistakes : sequence of (answers, hint)
        ``answers`` maps output names to what that mistake gives. It matches when every wrong
        output is among them and equal.
    """
    for answers, hint in mistakes:
        if all(n in answers and answers[n].shape == g.shape and close(g, answers[n])
               for n, g in got.items()):
            return hint
    return None


def compare(got, want, names, problem, reference, mistakes=(), hint=None):
    """Compare the student's arrays with the expected ones; return the largest difference.

    Parameters
    ----------
    got, want : tuples of arrays
        The same shapes (checked before by :func:`as_array`).
    names : tuple of str
        Their names, for the message.
    problem : str
        The problem's description.
    reference : str
        What ``want`` is (``"Eq. 44"``).
    mistakes : sequence of (answers, hint)
        Known mistakes, with ``answers`` a dict from output names to that mistake's outputs
        (:func:`matching_mistake`).
    hint : str
        The hint when no known mistake matches.

    Raises
    ------
    Wrong
        Naming every output that differs and by how much, with the matching hint.
    """
    diffs = [difference(g, w) for g, w in zip(got, want)]
    bad = [(n, d) for n, d, g, w in zip(names, diffs, got, want) if not close(g, w)]
    if not bad:
        return max(diffs, default=0.0)
    what = ", ".join(f"{n} by {d:.2g}" for n, d in bad)
    wrong = {n: g for n, g, w in zip(names, got, want) if not close(g, w)}
    known = matching_mistake(wrong, mistakes)
    raise Wrong(f"It differs from {reference}: {what} ({problem}).", known or hint,
                max(d for _, d in bad), known is not None)


def over(problems, one):
    """Run ``one(*problem) -> largest difference`` on every problem: ``(worst, count)``.

    A wrong answer on one problem does not stop the others: the Wrong reported is the first
    that matches a known mistake (its hint is the most telling), else the first one.
    :class:`NotDone` stops at once.
    """
    worst, errors, count = 0.0, [], 0
    for problem in problems:
        count += 1
        try:
            worst = max(worst, one(*problem))
        except Wrong as w:
            errors.append(w)
    if errors:
        raise next((w for w in errors if w.known), errors[0])
    return worst, count


def shapes(**arrays):
    """``"a (5, 7), delta (3, 7)"``: a problem's description from its arrays and numbers."""
    parts = []
    for name, x in arrays.items():
        parts.append(f"{name} {tuple(x.shape)}" if isinstance(x, np.ndarray) else f"{name} = {x:g}")
    return ", ".join(parts)
