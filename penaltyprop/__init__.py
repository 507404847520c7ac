r"""penaltyprop: Proximal Backpropagation (Frerix, Möllenhoff, Moeller, Cremers, ICLR 2018).

A from-scratch NumPy/CuPy implementation for teaching and for speed::

    import penaltyprop as pp
    net = pp.mlp([64, 32, 10], activation="relu")
    theta = net.init(seed=0)
    theta1 = pp.proxprop(net, theta, X, y, tau=1.0, tau_theta=0.05, solver="cg", cg_iterations=3)

Samples are columns: X has shape (n0, N). ``theta`` is a list of (W, b) pairs,
``theta[l-1]`` for the paper's layer l. See README.md for the equation-to-code table.
"""
from . import data, methods, optim, train  # modules: pp.optim.sgd(...), pp.train.train(...)
from .algorithms import penalty_backprop, proxprop, proxprop_direction
from .conv import Conv2d, cnn
from .forward import forward, gradient, loss
from .methods import METHODS, make_method, package_methods
from .network import Network, mlp
from .nonlinearities import Identity, ReLU, Sigmoid, Tanh
from .penalty import penalty_energy
from .pooling import Flatten, MaxPool2d
from .trace import SweepState, penalty_steps
from .transfer import Linear
from .version import __version__ as __version__  # defined once, in version.py

globals().update(package_methods())  # every method class of the package: pp.BackProp, pp.BCD, ...

__all__ = [
    *package_methods(), "METHODS", "make_method",
    "Conv2d", "Flatten", "MaxPool2d", "cnn",
    "Identity", "Linear", "Network", "ReLU", "Sigmoid", "Tanh",
    "forward", "gradient", "loss", "mlp", "penalty_backprop", "penalty_energy",
    "proxprop", "proxprop_direction", "penalty_steps", "SweepState",
    "data", "methods", "optim", "train",
]
