"""``--method NAME`` and one flag per method setting, generated from the method registry.

Every class in :data:`penaltyprop.methods.METHODS` lists its settings
(:func:`penaltyprop.methods.method_settings`); each setting becomes one flag
(``tau_theta`` -> ``--tau-theta``), shared by the methods that have it. A flag that the
chosen method does not have is an error naming the flag and the method. The methods set
every default and check every value; this module only turns strings into the settings'
types and the methods' error messages into flag names.
"""
from __future__ import annotations

import argparse
import re
import types
import typing

from ..methods import METHODS, make_method, method_settings

BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def flag(name) -> str:
    """``tau_theta`` -> ``--tau-theta``."""
    return "--" + name.replace("_", "-")


def _kinds(tp):
    """The plain types a setting's annotation names (a type, a string, a Union or Optional)."""
    if isinstance(tp, str):
        return [k for k in (int, float, bool, str) if re.search(rf"\b{k.__name__}\b", tp)]
    if isinstance(tp, type):
        return [tp]
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal:
        return [type(args[0])]
    if typing.get_origin(tp) in (typing.Union, getattr(types, "UnionType", None)):
        return [k for a in args for k in _kinds(a) if k is not type(None)]
    return []


def _parser_for(name, tp):
    """An argparse type turning the text of ``--name`` into the setting's type."""
    kinds = _kinds(tp)

    def parse(text):
        if bool in kinds and text.lower() in BOOLS:
            return BOOLS[text.lower()]
        for kind in (int, float):  # int before float: "3" is 3 where both are allowed
            if kind in kinds:
                try:
                    return kind(text)
                except ValueError:
                    continue
        if str in kinds or not kinds:
            return text
        what = " or ".join({int: "an integer", float: "a number", bool: "true or false"}[k]
                           for k in kinds if k in (int, float, bool))
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")

    parse.__name__ = name
    return parse


def _settings():
    """``{setting: (type, help, {method name: default})}`` over the registry, in order."""
    out = {}
    for method_name, cls in METHODS.items():
        for name, default, tp, help_text in method_settings(cls):
            entry = out.setdefault(name, (tp, help_text, {}))
            entry[2][method_name] = default
    return out


def _owners_text(owners):
    """``--method proxprop, default 1`` (one owner) or ``--method a (default 1) or b``."""
    def default(value):
        return "" if value is None else f"default {value:g}" if isinstance(value, float) \
            else f"default {value}"

    if len(owners) == 1:
        (name, value), = owners.items()
        return f"--method {name}" + (f", {default(value)}" if value is not None else "")
    return "--method " + " or ".join(name + (f" ({default(value)})" if value is not None else "")
                                     for name, value in owners.items())


def add_method_flags(parser, default="backprop"):
    """Add ``--method`` (alias ``--algorithm``) and one flag per method setting to ``parser``."""
    parser.add_argument("--method", "--algorithm", dest="method", choices=tuple(METHODS),
                        default=default,
                        help=f"training method (default {default}); every setting below "
                             "takes its default from the method")
    for name, (tp, help_text, owners) in _settings().items():
        parser.add_argument(flag(name), dest=name, type=_parser_for(flag(name), tp),
                            default=None, metavar=name.upper(),
                            help=f"{help_text} [{_owners_text(owners)}]")
    return parser


def _as_flags(message, names):
    """A method's error message with its settings as flags (``solver='cg'`` -> ``--solver cg``)."""
    for name in sorted(names, key=len, reverse=True):
        message = re.sub(rf"\b{name}=(['\"]?)([^'\",)\s]+)\1", rf"{flag(name)} \2", message)
        message = re.sub(rf"(?<![-\w]){name}\b", flag(name), message)
    return message


def method_from_args(args):
    """The method object that ``--method`` and the setting flags of ``args`` name.

    Raises
    ------
    ValueError
        For a flag the chosen method does not have, or a value the method refuses (the
        message names the flags).
    """
    settings = _settings()
    given = {name: getattr(args, name) for name in settings
             if getattr(args, name, None) is not None}
    for name in given:
        owners = settings[name][2]
        if args.method not in owners:
            raise ValueError(f"{flag(name)} only applies to --method {' or '.join(owners)}, "
                             f"not {args.method}")
    try:
        return make_method(args.method, **given)
    except (TypeError, ValueError) as err:
        raise ValueError(_as_flags(str(err), settings)) from None
