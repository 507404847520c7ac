"""Independent minimal implementations of the penalty family, for the tests (not collected).

Each function is written from its source's equations with NumPy alone and calls nothing of
penaltyprop's, so that a test comparing the package with it cannot pass because both share a
helper. Notation: W[l], b[l] for l = 1..K (index 0 unused), a[l] (a[0] = X), z[l] (z[0] unused),
Y the one-hot labels (C, N). Everything float64, samples as columns.

* :func:`bcd_sweep`: Zeng et al. 2019 (their notebooks' order: output, then for each layer
  from the top W/b, the activation below, the pre-activation below), the (W, b) block solved
  jointly, the output merged (one z_K) or split (V_N = a_K and U_N = z_K);
* :func:`admm_sweep`: Taylor et al. 2016, Algorithm 1, with a 1/2 on each penalty, biases and a
  proximal ridge on the (W, b) least squares;
* :func:`altmin_codes` and :func:`altmin_direction`: Choromanska et al. 2019, the codes top
  down by (Nesterov) gradient steps anchored at their forward values, then each layer's local
  gradient at the new codes.
"""
import numpy as np

relu = lambda t: np.maximum(t, 0)  # noqa: E731


def softmax(z):
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


def loss_value(z, Y, loss):
    """Summed loss over the columns: 1/2||z - Y||^2 or the softmax cross-entropy."""
    if loss == "squared":
        return 0.5 * ((z - Y) ** 2).sum()
    zs = z - z.max(axis=0)
    return float((np.log(np.exp(zs).sum(axis=0)) - (zs * Y).sum(axis=0)).sum())


def loss_grad(z, Y, loss):
    """Gradient of :func:`loss_value` (C, N): z - Y, or softmax(z) - Y."""
    return z - Y if loss == "squared" else softmax(z) - Y


def loss_prox(v, Y, c, loss, lin=0.0):
    """argmin_z loss(z) + <z, lin> + c/2||z - v||^2, column by column.

    Squared loss: closed form. Cross-entropy: Newton's method on each column (its Hessian
    diag(p) - p p^T + c I is SPD), run until the gradient is at rounding level.
    """
    if loss == "squared":
        return (Y - lin + c * v) / (1 + c)
    z = v.copy()
    for _ in range(50):
        p = softmax(z)
        g = p - Y + lin + c * (z - v)
        for i in range(z.shape[1]):
            H = np.diag(p[:, i]) - np.outer(p[:, i], p[:, i]) + c * np.eye(len(p))
            z[:, i] -= np.linalg.solve(H, g[:, i])
    g = softmax(z) - Y + lin + c * (z - v)
    assert np.abs(g).max() < 1e-13, "Newton did not converge"  # the reference must be exact
    return z


def relu_prox(a, v, gamma, c):
    """Entrywise argmin_t gamma/2 (a - max(t, 0))^2 + c/2 (t - v)^2.

    On t >= 0 and on t <= 0 the function is a convex quadratic; its minimiser on each half-line
    is the clipped stationary point. Keep the better of the two.
    """
    t_pos = np.maximum((gamma * a + c * v) / (gamma + c), 0)
    t_neg = np.minimum(v, 0)
    f = lambda t: gamma / 2 * (a - relu(t)) ** 2 + c / 2 * (t - v) ** 2  # noqa: E731
    return np.where(f(t_pos) <= f(t_neg), t_pos, t_neg)


def prox_wb(W, b, a_in, z, weight, prox):
    """argmin_{W,b} weight/2 ||z - W a_in - b 1^T||^2 + prox/2 ||[W b] - [W^k b^k]||^2, jointly:
    the normal equations [W b] (weight A A^T + prox I) = weight z A^T + prox [W^k b^k],
    A = [a_in; 1^T]."""
    A = np.vstack([a_in, np.ones((1, a_in.shape[1]))])
    rhs = weight * z @ A.T + prox * np.hstack([W, b[:, None]])
    Theta = np.linalg.solve((weight * A @ A.T + prox * np.eye(len(A))).T, rhs.T).T
    return Theta[:, :-1], Theta[:, -1]


def a_solve(W, b, z_above, target, weight, gamma):
    """argmin_a gamma/2 ||a - target||^2 + weight/2 ||z_above - W a - b||^2 (normal equations)."""
    n = W.shape[1]
    return np.linalg.solve(weight * W.T @ W + gamma * np.eye(n),
                           weight * W.T @ (z_above - b[:, None]) + gamma * target)


def bcd_sweep(W, b, a, z, Y, rho, gamma, alpha, loss, output="merged"):
    """One BCD sweep (Zeng et al.). Returns new lists W, b, a, z (a[K] = V_N when split)."""
    W, b, a, z = list(W), list(b), list(a), list(z)
    K = len(W) - 1
    m = W[K] @ a[K - 1] + b[K][:, None]
    if output == "split":
        # V_N = argmin loss(V) + gamma/2||V - U_N||^2 + alpha/2||V - V_N^k||^2
        a[K] = loss_prox((gamma * z[K] + alpha * a[K]) / (gamma + alpha), Y, gamma + alpha, loss)
        # U_N = argmin gamma/2||V_N - U||^2 + rho/2||U - W_N V_{N-1} - b_N||^2
        z[K] = (gamma * a[K] + rho * m) / (gamma + rho)
    else:
        # z_K = argmin loss(z) + rho/2||z - m||^2 + alpha/2||z - z_K^k||^2
        z[K] = loss_prox((rho * m + alpha * z[K]) / (rho + alpha), Y, rho + alpha, loss)
    for l in range(K, 0, -1):
        W[l], b[l] = prox_wb(W[l], b[l], a[l - 1], z[l], rho, alpha)
        if l == 1:
            break
        a[l - 1] = a_solve(W[l], b[l], z[l], relu(z[l - 1]), rho, gamma)
        m = W[l - 1] @ a[l - 2] + b[l - 1][:, None]
        # z_{l-1} = argmin gamma/2||a - relu(z)||^2 + rho/2||z - m||^2 + alpha/2||z - z^k||^2
        z[l - 1] = relu_prox(a[l - 1], (rho * m + alpha * z[l - 1]) / (rho + alpha), gamma,
                             rho + alpha)
    return W, b, a, z


def ridge_weight(a_in, ridge):
    """The ADMM (W, b)-step's ridge: ridge * ||[a; 1^T]||_F^2 / min(n_in + 1, N)."""
    m, N = a_in.shape
    return ridge * ((a_in ** 2).sum() + N) / min(m + 1, N)


def admm_sweep(W, b, a, z, lam, Y, beta, gamma, ridge, loss, update_multiplier):
    """One sweep of Taylor et al.'s Algorithm 1 (forward through the layers). lam: (C, N)."""
    W, b, a, z = list(W), list(b), list(a), list(z)
    K = len(W) - 1
    for l in range(1, K):
        W[l], b[l] = prox_wb(W[l], b[l], a[l - 1], z[l], 1.0, ridge_weight(a[l - 1], ridge))
        a[l] = a_solve(W[l + 1], b[l + 1], z[l + 1], relu(z[l]), beta, gamma)
        z[l] = relu_prox(a[l], W[l] @ a[l - 1] + b[l][:, None], gamma, beta)
    W[K], b[K] = prox_wb(W[K], b[K], a[K - 1], z[K], 1.0, ridge_weight(a[K - 1], ridge))
    m = W[K] @ a[K - 1] + b[K][:, None]
    # z_K = argmin loss(z) + <z, lambda> + beta/2||z - m||^2
    z[K] = loss_prox(m, Y, beta, loss, lin=lam)
    if update_multiplier:
        lam = lam + beta * (z[K] - m)
    return W, b, a, z, lam


def altmin_codes(W, b, X, Y, mu, steps, lr, momentum=0.0, scale="sum"):
    """The codes after the top-down inner steps; returns (forward codes, new codes).

    scale "sum": per sample, the last code minimises loss_i + mu/2||z - z^0||^2 and a middle
    code mu/2||z_{l+1} - W_{l+1} relu(z) - b||^2 + mu/2||z - z^0||^2. scale "mean" (the source's
    code): (1/mu) mean_i loss_i + mean((z - z^0)^2), and mean((z_{l+1} - ...)^2) + mean(...)
    for the middle codes (means over samples and units). Steps: PyTorch's SGD with Nesterov
    momentum, buffer restarted per code.
    """
    K = len(W) - 1
    N = X.shape[1]
    z0, a = [None], [X]
    for l in range(1, K):
        z0.append(W[l] @ a[-1] + b[l][:, None])
        a.append(relu(z0[-1]))
    z = list(z0)
    for l in range(K - 1, 0, -1):
        buf = np.zeros_like(z[l])
        for _ in range(steps):
            out = W[l + 1] @ relu(z[l]) + b[l + 1][:, None]
            n_l, n_up = z[l].shape[0], out.shape[0]
            if l == K - 1:
                up = loss_grad(out, Y, "cross_entropy") * (1.0 if scale == "sum" else 1 / (mu * N))
            else:
                up = (out - z[l + 1]) * (mu if scale == "sum" else 2 / (N * n_up))
            anchor = (z[l] - z0[l]) * (mu if scale == "sum" else 2 / (N * n_l))
            g = (z[l] > 0) * (W[l + 1].T @ up) + anchor
            buf = momentum * buf + g
            z[l] = z[l] - lr * (g + momentum * buf if momentum else g)
    return z0, z


def altmin_direction(W, b, X, Y, mu, steps, lr, momentum=0.0, scale="sum"):
    """Each layer's local gradient at the new codes (inputs: the updated codes below).

    Last layer: the gradient of the mean loss at input relu(z_{K-1}); hidden layer l: the
    gradient of c/2 ||z_l - W relu(z_{l-1}) - b||^2 with c = mu/N ("sum") or 2/(N n_l)
    ("mean", PyTorch's mse_loss). Returns [(dW, db)] for l = 1..K.
    """
    K = len(W) - 1
    N = X.shape[1]
    _, z = altmin_codes(W, b, X, Y, mu, steps, lr, momentum, scale)
    inputs = [X] + [relu(z[l]) for l in range(1, K)]
    d = []
    for l in range(1, K + 1):
        r = W[l] @ inputs[l - 1] + b[l][:, None]
        if l == K:
            g = loss_grad(r, Y, "cross_entropy") / N
        else:
            g = (r - z[l]) * (mu / N if scale == "sum" else 2 / (N * z[l].shape[0]))
        d.append((g @ inputs[l - 1].T, g.sum(axis=1)))
    return d
