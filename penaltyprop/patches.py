r"""Blockwise patch-matrix products for convolutions: the speed below :class:`~.conv.Conv2d`.

:meth:`Conv2d.patches` builds the whole im2col matrix P (m, H W N) literally; for the paper's
first layer that is 75 x 512,000 floats (150 MB), written, then read by a GEMM. The helpers here
compute the same products, :math:`W P + b\mathbf 1^\top`, :math:`R P^\top` and the prox step's
Gram matrix :math:`PP^\top` (with :math:`P\mathbf 1`), a cache-sized block of output rows at a
time, so that P is never formed whole, and the input gradient as a correlation with the flipped
kernel instead of col2im. ``tests/test_conv_fast_paths.py`` and
``tests/test_conv_prox_operator.py`` hold them equal to the literal path.
"""
from __future__ import annotations

from contextlib import nullcontext

from .backend import array_module
from .backend.linalg import numpy_lapack

#: Bytes of patch matrix built per block on the CPU: a block of P stays in the last-level
#: cache (32 MB on the 2-core machine) between its im2col copy and its GEMM. Measured there,
#: quiet: the default CNN's three forward convolutions took 10.5/19/6 ms with 1-8 MB blocks,
#: 12/19/7 ms with 16 MB, 23/33/11 ms with P whole. Under load (other processes on both
#: cores) many small multithreaded GEMMs stall: a BackProp step took 3.4x (8 MB blocks), 1.3x
#: (32 MB) and 1.2x (whole) the time of the unblocked code. 32 MB is the compromise.
BLOCK_BYTES = 32 * 2**20


def one_blas_thread(xp):
    r"""Context: BLAS calls of this thread run on it alone (NumPy's OpenBLAS; else a no-op).

    The convolution's prox operator (:class:`penaltyprop.conv.ConvPatchOperator`) runs
    :func:`patch_gram` and :func:`patch_product` in it. Many multithreaded GEMMs in a row, each
    with barriers between slices of its work, stall when other processes compete for the cores:
    every barrier waits for a descheduled worker (as the Cholesky factorisation does, see
    ``backend.linalg``). Measured on the 2-core machine under load (a niced paper-scale run and
    a test run beside it), medians of 7 interleaved rounds, default CNN at N = 500, layers 1/2/3:
    the Gram matrix took 170/242/128 ms on one thread against 376/3136/802 ms on two (the whole
    P P^T on two: 703/3281/822 ms); :math:`V_WP + v_b\mathbf 1^\top` took 53/65/19 ms against
    95/187/47 ms. :func:`patch_gradient` stays on two threads (48/65/16 against 55/74/25 ms).
    """
    lapack = numpy_lapack() if xp.__name__ == "numpy" else None
    return lapack.one_thread() if lapack is not None else nullcontext()


def pad_or_crop(a, q):
    """a (C, H, W, N) with q zeros added on each side of H and W (a copy), or, for q < 0, with
    -q rows and columns cut off each side (a view); a itself for q = 0."""
    if q < 0:
        return a[:, -q:a.shape[1] + q, -q:a.shape[2] + q, :]
    if q == 0:
        return a
    C, H, W, N = a.shape
    a_pad = array_module(a).zeros((C, H + 2 * q, W + 2 * q, N), dtype=a.dtype)
    a_pad[:, q:q + H, q:q + W, :] = a
    return a_pad


def patch_view(a_pad, k, H_out, W_out):
    r"""The im2col matrix as a strided view, no copy: V[c, i, j, h, w, n] = a_pad[c, h+i, w+j, n].

    Shape (C, k, k, H_out, W_out, N); ``V.reshape(C k^2, H_out W_out N)`` (a copy) is
    :math:`P(a)`. The strides of i and h are both a_pad's row stride, those of j and w its
    column stride.
    """
    C, N = a_pad.shape[0], a_pad.shape[-1]
    s_c, s_h, s_w, s_n = a_pad.strides
    return array_module(a_pad).lib.stride_tricks.as_strided(
        a_pad, shape=(C, k, k, H_out, W_out, N), strides=(s_c, s_h, s_w, s_h, s_w, s_n))


def row_blocks(V):
    """Ranges (h0, h1) of output rows, each block's columns of P about :data:`BLOCK_BYTES` (on
    the CPU; on a GPU one block: all rows)."""
    C, k, _, H_out, W_out, N = V.shape
    if array_module(V).__name__ != "numpy":
        return [(0, H_out)]
    rows = max(1, min(H_out, BLOCK_BYTES // (C * k * k * W_out * N * V.itemsize)))
    return [(h0, min(h0 + rows, H_out)) for h0 in range(0, H_out, rows)]


def patch_block(V, h0, h1, buf):
    """The columns of P for output rows h0:h1, copied from the view V into ``buf``: (m, cols)."""
    C, k, _, _, W_out, N = V.shape
    B = buf[:C * k * k * (h1 - h0) * W_out * N].reshape(C, k, k, h1 - h0, W_out, N)
    B[...] = V[:, :, :, h0:h1]
    return B.reshape(C * k * k, -1)


def patch_product(V, Wm, b=None):
    r""":math:`W_{\mathrm{mat}} P + b\mathbf{1}^\top` (Eq. 7 in rows), P the im2col matrix of V.

    Block by block of output rows (:func:`row_blocks`): the block's columns of P are copied into
    one reused buffer and multiplied while they are in cache, so P is never formed whole.

    Parameters
    ----------
    V : array, shape (C, k, k, H_out, W_out, N)
        A strided view (:func:`patch_view`).
    Wm : array, shape (n_out, C k^2)
        The weights as a matrix.
    b : array, shape (n_out,), or None
        The biases; None means no bias.

    Returns
    -------
    array, shape (n_out, H_out W_out N)
        Columns ordered (h, w, n).
    """
    xp = array_module(V)
    C, k, _, H_out, W_out, N = V.shape
    cols = W_out * N  # columns of P per output row
    blocks = row_blocks(V)
    Z = xp.empty((Wm.shape[0], H_out * cols), dtype=xp.result_type(Wm.dtype, V.dtype))
    buf = xp.empty(C * k * k * (blocks[0][1] - blocks[0][0]) * cols, dtype=V.dtype)
    for h0, h1 in blocks:
        Zb = Z[:, h0 * cols:h1 * cols]
        xp.matmul(Wm, patch_block(V, h0, h1, buf), out=Zb)
        if b is not None:
            Zb += b[:, None]
    return Z


def patch_gradient(V, R):
    r""":math:`R A^\top = (R P^\top, R\mathbf{1})` (Eq. 43), P the im2col matrix of V, block by block.

    As :func:`penaltyprop.transfer.apply_At` computes it, as the small product
    :math:`(P R^\top)^\top` (the fast form for long K), accumulated over the blocks of
    :func:`row_blocks` so that P is never formed whole.

    Parameters
    ----------
    V : array, shape (C, k, k, H_out, W_out, N)
        A strided view.
    R : array, shape (n_out, H_out W_out N)
        Rows.

    Returns
    -------
    (RW, rb) : tuple of arrays
        Of shapes (n_out, C k^2) and (n_out,).
    """
    xp = array_module(V)
    C, k, _, H_out, W_out, N = V.shape
    cols = W_out * N
    blocks = row_blocks(V)
    dtype = xp.result_type(R.dtype, V.dtype)
    acc = xp.zeros((C * k * k, R.shape[0]), dtype=dtype)  # (R P^T)^T, summed over blocks
    part = xp.empty_like(acc)
    buf = xp.empty(C * k * k * (blocks[0][1] - blocks[0][0]) * cols, dtype=V.dtype)
    for h0, h1 in blocks:
        xp.matmul(patch_block(V, h0, h1, buf), R[:, h0 * cols:h1 * cols].T, out=part)
        acc += part
    return xp.ascontiguousarray(acc.T), R.sum(axis=1)


def patch_gram(V):
    r""":math:`AA^\top = [[PP^\top, P\mathbf 1], [\mathbf 1^\top P^\top, K]]` (Eq. 44), P the im2col
    matrix of V, A = [P; 1^T]: the prox step's Gram matrix, accumulated block by block.

    Each block's columns of P are copied into one reused buffer (:func:`row_blocks`), and their
    products :math:`P_bP_b^\top` (one BLAS syrk: the same buffer on both sides) and row sums are
    added up, so P is never formed whole.

    Parameters
    ----------
    V : array, shape (C, k, k, H_out, W_out, N)
        A strided view (:func:`patch_view`).

    Returns
    -------
    array, shape (m+1, m+1)
        m = C k^2, in V's dtype.
    """
    xp = array_module(V)
    C, k, _, H_out, W_out, N = V.shape
    m, cols = C * k * k, W_out * N
    blocks = row_blocks(V)
    G = xp.zeros((m + 1, m + 1), dtype=V.dtype)
    part = xp.empty((m, m), dtype=V.dtype)
    buf = xp.empty(m * (blocks[0][1] - blocks[0][0]) * cols, dtype=V.dtype)
    for h0, h1 in blocks:
        Pb = patch_block(V, h0, h1, buf)  # (m, (h1 - h0) cols)
        xp.matmul(Pb, Pb.T, out=part)
        G[:m, :m] += part  # P P^T = sum over blocks of P_b P_b^T
        G[:m, m] += Pb.sum(axis=1)  # P 1
    G[m, :m] = G[:m, m]
    G[m, m] = H_out * cols  # 1^T 1 = K
    return G


def transposed_correlation(W, delta, p):
    r""":math:`P^*(W_{\mathrm{mat}}^\top\delta)`, the adjoint in a (Eq. 10), as a correlation.

    Entry by entry, :math:`P^*(W_{\mathrm{mat}}^\top\delta)[c, y, x, n] = \sum_{o,i,j} W[o,c,i,j]\,
    \delta[o, y+p-i, x+p-j, n]` (terms outside delta dropped). With :math:`i' = k-1-i` this is the
    cross-correlation of delta, padded by q = k-1-p (cut by -q if negative), with the kernel
    :math:`W'[c, o, i', j'] = W[o, c, k-1-i', k-1-j']`: a forward convolution from C_out to C_in
    channels, computed by :func:`patch_product`.

    Parameters
    ----------
    W : array, shape (C_out, C_in, k, k)
        The weights.
    delta : array, shape (C_out, H_out, W_out, N)
        An array in output space.
    p : int
        The convolution's padding.

    Returns
    -------
    array, shape (C_in, H W N)
        Rows of the (C_in, H, W, N) result, H = H_out - 2p + k - 1.
    """
    C_out, C_in, k, _ = W.shape
    q = k - 1 - p
    W_adj = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C_in, C_out * k * k)  # (C_in, m')
    H, Wd = delta.shape[1] + 2 * q - k + 1, delta.shape[2] + 2 * q - k + 1
    return patch_product(patch_view(pad_or_crop(delta, q), k, H, Wd), W_adj)
