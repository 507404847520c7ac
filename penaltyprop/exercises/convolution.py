r"""Notebook 05: the patch (im2col) matrix of a convolution, and its adjoint (col2im).

* ``im2col(a, k, padding) -> P``: a (C, H, W, N), batch last; P (C k^2, H_out W_out N) with
  :math:`P[(c, i, j), (h, w, n)] = a_{\mathrm{pad}}[c, h+i, w+j, n]`, rows ordered (c, i, j) and
  columns (h, w, n) (C order), :math:`H_{out} = H + 2p - k + 1`. Then
  :math:`\phi(\theta, a) = W_{\mathrm{mat}}P(a) + b\mathbf 1^\top` is the convolution.
* ``col2im(G, a_shape, k, padding) -> a``: the adjoint of im2col, which Eq. 10 needs for a
  convolution: every entry of G is added back to the pixel it was copied from, then the padding
  is cut off. The check holds it to the definition of an adjoint,
  :math:`\langle P(a), G\rangle = \langle a, P^*(G)\rangle`, and to
  :meth:`penaltyprop.Conv2d.adjoint_patches`.
"""
from __future__ import annotations

from ..backend import host_rng
from ..backend import numpy as np
from ..conv import Conv2d
from .verdict import Wrong, as_array, call, checker, close, compare, over, shapes

#: (C, H, W, N, k, padding): unequal sizes everywhere, a kernel of 2, padding 2 > k/2, N = 1
PROBLEMS = ((2, 5, 4, 3, 3, 1), (1, 6, 6, 2, 2, 0), (3, 4, 5, 1, 3, 0), (2, 3, 3, 2, 3, 2))

#: the package's modules with the convolution's patch matrix and its adjoint: not for the student
ANSWERS = ("penaltyprop.conv", "penaltyprop.patches")


def problems(seed=5):
    """``(a, k, padding, conv, description)``; ``conv`` is the package's Conv2d of those shapes."""
    rng = host_rng(seed)
    for i, (C, H, W, N, k, p) in enumerate(PROBLEMS):
        a = rng.standard_normal((C, H, W, N))
        conv = Conv2d(C, 1, k, (H, W), padding=p)
        yield a, k, p, conv, (f"problem {i + 1} of {len(PROBLEMS)}: "
                              + shapes(a=a, k=k, padding=p))


def same_columns(got, want):
    """Whether ``got`` holds the columns of ``want`` in another order (entries copied, so equal)."""
    return sorted(map(tuple, got.T)) == sorted(map(tuple, want.T))


@checker("im2col", "the patch matrix P(a) of Conv2d.patches")
def check_im2col(im2col):
    r"""Check ``im2col(a, k, padding) -> P``, the patch matrix of a convolution.

    Parameters
    ----------
    im2col : callable
        The student's function: a (C, H, W, N); k the kernel size; padding >= 0. Returns P of
        shape (C k^2, H_out W_out N), rows (c, i, j), columns (h, w, n).

    Returns
    -------
    Verdict
        Right, wrong or not done, with a message that says why.
    """

    def one(a, k, p, conv, problem):
        out = call(im2col, (a, k, p), problem, "a has shape (C, H, W, N), batch last.",
                   answers=ANSWERS)
        want = conv.patches(a)
        C, H, W, N = a.shape
        if np.shape(out) == (C * k * k, (H - k + 1) * (W - k + 1) * N) and p > 0:
            raise Wrong(f"P has shape {np.shape(out)}, expected {want.shape} ({problem}).",
                        "pad a first: padding zeros on both sides of H and W, "
                        "H_out = H + 2 padding - k + 1.", known=True)
        got = as_array(out, "P", want.shape, problem, " = (C k^2, H_out W_out N)")
        if not close(got, want) and same_columns(got, want):
            raise Wrong(f"Every column of P is a right patch, but the columns are in another "
                        f"order ({problem}).", "columns are ordered (h, w, n): the sample "
                        "index n varies fastest, as with batch-last arrays.", known=True)
        if not close(got, want) and same_columns(got.T, want.T):
            flipped = want.reshape(C, k, k, -1)[:, ::-1, ::-1].reshape(want.shape)
            hint = ("the kernel is flipped: im2col copies a_pad[c, h+i, w+j], a "
                    "cross-correlation, as every deep-learning framework computes it."
                    if close(got, flipped) else
                    "rows are ordered (c, i, j): channel slowest, as W[o] reshapes to a row.")
            raise Wrong(f"Every row of P holds the right numbers, but the rows are in another "
                        f"order ({problem}).", hint, known=True)
        return compare((got,), (want,), ("P",), problem, "P(a)",
                       hint="P[(c, i, j), (h, w, n)] = a_pad[c, h+i, w+j, n].")

    return over(problems(), one)


def col2im_assigned(G, conv, N):
    """The known mistake: col2im that ASSIGNS the patch entries instead of adding them."""
    C, H, W = conv.in_shape
    k, p = conv.kernel_size, conv.padding
    _, H_out, W_out = conv.out_shape
    G6 = G.reshape(C, k, k, H_out, W_out, N)
    out = np.zeros((C, H + 2 * p, W + 2 * p, N))
    for i in range(k):
        for j in range(k):
            out[:, i:i + H_out, j:j + W_out, :] = G6[:, i, j]
    return out[:, p:p + H, p:p + W, :]


@checker("col2im", "the adjoint of im2col (Conv2d.adjoint_patches)")
def check_col2im(col2im):
    r"""Check ``col2im(G, a_shape, k, padding) -> a``, the adjoint of im2col.

    Parameters
    ----------
    col2im : callable
        The student's function: G (C k^2, H_out W_out N), a_shape = (C, H, W, N), k, padding.
        Returns an array of shape a_shape with :math:`\langle P(a), G\rangle = \langle a, P^*(G)\rangle`.

    Returns
    -------
    Verdict
        Right, wrong or not done, with a message that says why.
    """

    def one(a, k, p, conv, problem):
        rng = host_rng(6)
        C, H, W, N = a.shape
        G = rng.standard_normal(conv.patches(a).shape)
        out = call(col2im, (G, a.shape, k, p), problem,
                   "G has shape (C k^2, H_out W_out N); reshape it to (C, k, k, H_out, W_out, N).",
                   answers=ANSWERS)
        if np.shape(out) == (C, H + 2 * p, W + 2 * p, N) and p > 0:
            raise Wrong(f"The result has shape {np.shape(out)}, expected {a.shape} ({problem}).",
                        "cut the padding off at the end: a_pad[:, p:p+H, p:p+W, :].", known=True)
        got = as_array(out, "col2im(G)", a.shape, problem)
        lhs, rhs = float((conv.patches(a) * G).sum()), float((a * got).sum())
        want = conv.adjoint_patches(G, N)
        return compare((got,), (want,), ("col2im(G)",), problem,
                       f"the adjoint (<P(a), G> = {lhs:.6g}, <a, col2im(G)> = {rhs:.6g})",
                       [({"col2im(G)": col2im_assigned(G, conv, N)},
                         "overlapping patches share pixels: ADD every entry back (+=), do not "
                         "assign it.")],
                       "col2im adds G[(c, i, j), (h, w, n)] to a_pad[c, h+i, w+j, n].")

    return over(problems(), one)
