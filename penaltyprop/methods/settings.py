r"""A method's settings: the fields of its dataclass, each with a default and a help text.

:func:`setting` declares one; :func:`check_setting` is what the registry checks of each when a
method class is defined (a default, a help text, a name that no command-line flag has);
:func:`method_settings` lists them for the command line's generated flags and the docs' table.
"""
from __future__ import annotations

import dataclasses
import re
import typing

#: the flags of the commands that take method settings (``train``, ``bench``; without the
#: dashes, ``-`` as ``_``): a method setting named like one would take the command's flag.
#: ``tau_theta`` and ``cg_iterations`` are not here: the bench's preset flags of those names
#: are deliberately the ProxProp settings. tests/test_method_registry.py holds this set equal
#: to the parsers.
COMMAND_FLAGS = frozenset({
    "h", "help", "method", "algorithm",
    # train
    "dataset", "data_dir", "download", "no_download", "subset", "model", "activation", "tau",
    "optimizer", "momentum", "weight_decay", "batch_size", "epochs", "seed", "dtype", "backend",
    "out", "resume", "progress", "no_progress", "blas_threads",
    # bench
    "repetitions", "modes", "breakdown", "no_breakdown", "json", "load",
})


def setting(default, help):
    """A dataclass field for a method setting, with the help text the command line shows.

    Every setting has a default (``make_method(name)`` and the family comparison build a
    method from its defaults) and a help text (``train --method NAME --help`` shows both).
    """
    return dataclasses.field(default=default, metadata={"help": help})


def own_annotations(cls) -> dict:
    """The annotations written in ``cls``'s own body."""
    return cls.__dict__.get("__annotations__", {})


def is_classvar(annotation) -> bool:
    """Whether an annotation (an object, or a string under postponed evaluation) is a ClassVar."""
    if isinstance(annotation, str):
        return re.match(r"(typing\.)?ClassVar\b", annotation.strip()) is not None
    return annotation is typing.ClassVar or typing.get_origin(annotation) is typing.ClassVar


def check_setting(cls, name):
    """One setting ``name`` declared in ``cls``'s body: a default, a help text, a free name."""
    where = f"{cls.__qualname__}.{name}"
    flag = "--" + name.replace("_", "-")
    if name.startswith("_") or not name.isidentifier():
        raise ValueError(f"setting {where}: a setting's name must not start with _ (it "
                         f"becomes the flag {flag})")
    if name in COMMAND_FLAGS:
        raise ValueError(f"setting {where} is named like the command line's own {flag}: "
                         f"choose another name")
    for base in cls.__mro__[1:]:
        fields = base.__dict__.get("__dataclass_fields__", {})
        if name in base.__dict__ and name not in fields:
            raise ValueError(f"setting {where} would hide {base.__qualname__}.{name}: choose "
                             f"another name (or write a class attribute without annotation)")
    value = cls.__dict__.get(name, dataclasses.MISSING)
    # register() after @dataclass: the decorator has put the default in the field's place
    value = cls.__dict__.get("__dataclass_fields__", {}).get(name, value)
    if not isinstance(value, dataclasses.Field):
        if value is dataclasses.MISSING:
            raise TypeError(f"setting {where} has no default: write "
                            f"{name} = setting(DEFAULT, 'what it does')")
        raise TypeError(f"setting {where} has no help text: write "
                        f"{name} = setting({value!r}, 'what it does')")
    if value.default is dataclasses.MISSING:
        raise TypeError(f"setting {where} has no default: use setting(DEFAULT, help)")
    if not value.metadata.get("help"):
        raise TypeError(f"setting {where} has no help text: use setting(default, help)")


def check_decorated(cls):
    """Raise TypeError for a class whose own settings are no dataclass fields (it lacks the
    ``@dataclass(frozen=True)`` decorator, so its settings would be ignored)."""
    own = [n for n, annotation in own_annotations(cls).items() if not is_classvar(annotation)]
    if own and "__dataclass_fields__" not in cls.__dict__:
        raise TypeError(f"{cls.__qualname__} declares settings ({', '.join(own)}) but is not a "
                        f"dataclass: decorate it with @dataclass(frozen=True)")


def method_settings(cls):
    """``[(name, default, type, help), ...]`` of a method class, for generated CLI flags.

    The type is the annotation, resolved where its names can be (else its text).
    """
    check_decorated(cls)
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation naming what its module cannot resolve
        hints = {}
    return [(f.name, f.default, hints.get(f.name, f.type), f.metadata.get("help", ""))
            for f in dataclasses.fields(cls)]
