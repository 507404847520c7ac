r"""Training methods as objects: one file per method, one registry.

``METHODS`` maps a name (``--method NAME``) to its class. A new method is a new file here
with a class derived from :class:`~.base.OracleMethod` or :class:`~.base.LiftedMethod`, and
one line in ``METHODS``; no other call site changes (docs/architecture.md).
"""
from __future__ import annotations

from .admm import ADMM
from .altmin import AltMin
from .backprop import BackProp
from .base import LiftedMethod, Method, OracleMethod, method_settings
from .bcd import BCD
from .proxprop import ProxProp

#: name -> method class
METHODS = {cls.name: cls for cls in (BackProp, ProxProp, BCD, ADMM, AltMin)}


def make_method(name, **settings):
    """The method ``name`` with the given settings (ValueError naming a bad name or setting)."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}")
    cls = METHODS[name]
    known = {field_name for field_name, *_ in method_settings(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a setting of method {name!r} "
                         f"(its settings: {', '.join(sorted(known)) or 'none'})")
    return cls(**settings)


def method_from_config(config):
    """The method a :meth:`Method.config` dict describes."""
    config = dict(config)
    return make_method(config.pop("method", None), **config)


__all__ = ["ADMM", "AltMin", "BCD", "BackProp", "LiftedMethod", "METHODS", "Method", "OracleMethod",
           "ProxProp", "make_method", "method_from_config", "method_settings"]
