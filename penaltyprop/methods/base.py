r"""What every training method is: settings held once, and one of two ways to train.

A method is a small frozen dataclass (its fields are its settings, each default written once,
each checked in ``__post_init__``) of one of two kinds (DESIGN.md, "Methods"):

* an **oracle** method turns a minibatch into a direction that any optimizer consumes like a
  gradient: ``J, d = method.direction(net, theta, X, y)``;
* a **lifted** method keeps its own variables for every training sample between sweeps
  (activations a_l, z_l, multipliers) and updates theta by full-batch sweeps:
  ``state = method.init_state(net, theta, X, y)``,
  ``theta, state = method.sweep(net, theta, state, X, y)``, and
  ``method.diagnostics(net, theta, state, X, y)`` reports its objective and constraint
  residuals.

The training loop, the command line, the experiments and the bench only use this interface;
none of them branches on a method's name.
"""
from __future__ import annotations

import dataclasses
import typing


def setting(default, help):
    """A dataclass field for a method setting, with the help text the command line shows."""
    return dataclasses.field(default=default, metadata={"help": help})


class Method:
    """Base class of all methods (subclasses are frozen dataclasses).

    Class attributes
    ----------------
    name : str, the registry key (``--method NAME``).
    kind : ``"oracle"`` or ``"lifted"``.
    """

    name: typing.ClassVar[str] = ""
    kind: typing.ClassVar[str] = ""

    @property
    def label(self) -> str:
        """The name in legends and tables, e.g. ``"ProxProp (cg3)"``."""
        return type(self).__name__

    @property
    def key(self) -> str:
        """A short file-safe name, e.g. ``"cg3"``."""
        return self.name

    def get_params(self) -> dict:
        """The settings, as given (after checking and resolving defaults)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def config(self) -> dict:
        """JSON-able: ``{"method": name, **settings}``; :func:`method_from_config` inverts it."""
        return {"method": self.name, **self.get_params()}

    def describe(self) -> str:
        """One line: the label and the settings."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"{self.label}" + (f" ({params})" if params else "")


class OracleMethod(Method):
    """A method that gives a direction per minibatch (BackProp, ProxProp, ...)."""

    kind = "oracle"
    #: the optimizer's learning rate (the paper's tau) with SGD/Nesterov when none is given;
    #: None: it must be given
    default_tau: typing.ClassVar[typing.Optional[float]] = None
    #: the optimizer the command line uses when none is given; default_tau is its rate
    default_optimizer: typing.ClassVar[str] = "nesterov"

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: the minibatch loss :math:`J(\theta; X, y)` and a direction with the
        structure of theta. ``check=False`` skips the input checks (hot loops)."""
        raise NotImplementedError


class LiftedMethod(Method):
    """A method with per-sample variables, trained by full-batch sweeps (BCD, ADMM, ...)."""

    kind = "lifted"

    def init_state(self, net, theta, X, y):
        """The method's variables for the samples X, y (e.g. from a forward pass)."""
        raise NotImplementedError

    def sweep(self, net, theta, state, X, y):
        """One sweep over every block: ``(theta, state)``, both new."""
        raise NotImplementedError

    def diagnostics(self, net, theta, state, X, y) -> dict:
        """Host floats: the objective the method decreases and its constraint residuals."""
        raise NotImplementedError


def method_settings(cls):
    """``[(name, default, type, help), ...]`` of a method class, for generated CLI flags."""
    hints = typing.get_type_hints(cls)
    return [(f.name, f.default, hints.get(f.name), f.metadata.get("help", ""))
            for f in dataclasses.fields(cls)]
