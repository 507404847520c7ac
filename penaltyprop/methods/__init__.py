r"""Training methods as objects: one file per method, registered when it is defined.

Every module of this package is imported here, in name order; defining a method class in one
(a subclass of :class:`~.base.OracleMethod` or :class:`~.base.LiftedMethod` with a ``name``)
registers it in :data:`METHODS`, so that a new method is one new file and nothing else
(docs/architecture.md, "Adding a method"). A class defined in a user's own module or notebook
registers the same way. The package's method classes are names of this module (and of
``penaltyprop``): ``methods.BCD``, ``pp.ProxProp``.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import (
    METHODS,
    FamilyRun,
    LiftedMethod,
    Method,
    OracleMethod,
    register,
    unregister,
)
from .networks import ANY_NETWORK, RELU_MLP, Networks
from .settings import method_settings, setting

#: the modules of this package, in the order they are imported
MODULES = sorted(info.name for info in pkgutil.iter_modules(__path__))


def package_methods() -> dict:
    """``{class name: class}`` of the methods defined in this package, in registry order."""
    return {cls.__name__: cls for cls in METHODS.values()
            if cls.__module__.startswith(__name__ + ".")}


def __getattr__(name):
    """A method class asked for while the modules are being imported (``from
    penaltyprop.methods import BackProp`` in a method file): import the others first."""
    if name in MODULES or name.startswith("__"):  # a submodule being imported, a dunder
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    classes = package_methods()
    if name in classes:
        return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
    globals().update(package_methods())  # for the modules after it


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


__all__ = ["ANY_NETWORK", "RELU_MLP", "FamilyRun", "LiftedMethod", "METHODS", "Method",
           "Networks", "OracleMethod", "make_method", "method_from_config", "method_settings",
           "package_methods", "register", "setting", "unregister", *package_methods()]
