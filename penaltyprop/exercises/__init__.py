r"""Checks for the notebooks' coding exercises: the student writes the code, a check tied to the
mathematics says whether it is right and, if not, where to look.

Every check takes the student's function, runs it on random problems of several shapes in
float64, compares the result with the package's own implementation or with the mathematics, and
answers with a :class:`Verdict` in one or two lines: right (with the largest difference), wrong
(what differs, with a hint tied to the equation), or not done yet (the placeholder still raises
NotImplementedError). No check needs data or a network connection::

    from penaltyprop import exercises as ex

    def prox_primal(W, b, a, z_half, tau_theta):
        raise NotImplementedError   # the student's code goes here

    ex.check_prox_primal(prox_primal)   # prox_primal: not done yet (...)

The checks, by notebook, and what the student writes:

* 01 :func:`check_algorithm1`: one sweep of Algorithm 1 for two linear layers (Proposition 1);
* 02 :func:`check_lambda_max`: the largest eigenvalue of :math:`AA^\top` by power iteration;
* 03 :func:`check_prox_primal`: the prox step of Eq. 44 from the (m+1) x (m+1) system;
  :func:`check_prox_batch`: the same from the N x N system (push-through identity);
  :func:`check_cg_iteration`: one CG iteration on the prox operator, row by row;
* 04 :func:`check_nesterov_step`: Nesterov momentum on any direction (PyTorch's form);
* 05 :func:`check_im2col`: the patch matrix of a convolution; :func:`check_col2im`: its adjoint;
* 06 :func:`check_relu_prox`: the ReLU prox by cases (BCD's and ADMM's z-step);
  :func:`check_multiplier_update`: ADMM's multiplier step (the KKT condition at the output);
  :func:`check_prox_every_layer`: a training method of one's own, a class (ProxProp with the
  prox step on every layer): registered, its direction (Eqs. 13-14), the networks it refuses,
  and a short training run.

With ``PENALTYPROP_CHECKS=strict`` in the environment a check that is not right raises
AssertionError (:mod:`penaltyprop.exercises.verdict`).
"""
from .convolution import check_col2im, check_im2col
from .family import check_multiplier_update, check_relu_prox
from .method import check_prox_every_layer
from .proximal import check_cg_iteration, check_prox_batch, check_prox_primal
from .steps import check_lambda_max, check_nesterov_step
from .sweep import check_algorithm1
from .verdict import STRICT_ENV, Verdict

#: every check, by the name of the function the student writes (for a class: the method's
#: registry name), in the notebooks' order
CHECKS = {
    "algorithm1": check_algorithm1,
    "lambda_max": check_lambda_max,
    "prox_primal": check_prox_primal,
    "prox_batch": check_prox_batch,
    "cg_iteration": check_cg_iteration,
    "nesterov_step": check_nesterov_step,
    "im2col": check_im2col,
    "col2im": check_col2im,
    "relu_prox": check_relu_prox,
    "multiplier_update": check_multiplier_update,
    "prox_every_layer": check_prox_every_layer,
}

__all__ = ["CHECKS", "STRICT_ENV", "Verdict", *(f"check_{name}" for name in CHECKS)]
