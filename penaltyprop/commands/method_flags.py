"""``--method NAME`` and one flag per method setting, generated from the method registry.

Every class in :data:`penaltyprop.methods.METHODS` lists its settings
(:func:`penaltyprop.methods.method_settings`); each setting becomes one flag
(``tau_theta`` -> ``--tau-theta``). Two methods with a setting of the same name share its
flag, but not its meaning: the flag's text is read as the chosen method's setting, with that
method's type, and ``--method NAME --help`` shows that method's settings only, each with the
method's own help text and default. A flag that the chosen method does not have is an error
naming the flag and the method. The methods set every default and check every value; this
module only turns the text of a flag into the setting's type and the methods' error messages
into flag names.
"""
from __future__ import annotations

import argparse
import re
import types
import typing

from ..methods import METHODS, make_method, method_settings
from ..methods.table import summary

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


def convert(text, tp, name):
    """The text of the flag ``name`` as a value of the setting's type ``tp`` (ValueError
    naming the flag when it is none)."""
    kinds = _kinds(tp)
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
    raise ValueError(f"{flag(name)}: expected {what}, got {text!r}")


def settings_table():
    """``{setting: {method name: (default, type, help)}}`` over the registry, in order."""
    out = {}
    for method_name, cls in METHODS.items():
        for name, default, tp, help_text in method_settings(cls):
            out.setdefault(name, {})[method_name] = (default, tp, help_text)
    return out


def _default(value):
    return f"default {value:g}" if isinstance(value, float) else f"default {value}"


def generic_help(owners):
    """A setting's help before a method is chosen: each owner's text and default."""
    texts = {help_text for _, _, help_text in owners.values()}
    if len(texts) == 1:
        (text,) = texts
        return text + " [--method " + " or ".join(
            name + ("" if d is None else f" ({_default(d)})") for name, (d, _, _) in owners.items()
        ) + "]"
    return "; ".join(f"--method {name}: {text}" + ("" if d is None else f" ({_default(d)})")
                     for name, (d, _, text) in owners.items())


def method_help(name, owners):
    """A setting's help once ``--method name`` is chosen: that method's text and default."""
    default, _, text = owners[name]
    return text + ("" if default is None else f" ({_default(default)})")


class ChooseMethod(argparse.Action):
    """``--method NAME``: stores the name, and makes the help that follows it (``--method NAME
    --help``) show that method's settings only, with its own texts and defaults."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        table = settings_table()
        for name, action in self.settings.items():
            owners = table.get(name, {})
            action.help = method_help(values, owners) if values in owners else argparse.SUPPRESS
        if self.group is not None:
            cls = METHODS[values]
            doc = summary(cls).replace("`", "")
            if cls.kind == "lifted":
                doc += " It trains by full-batch sweeps, without an optimizer."
            elif cls.default_tau is not None:
                doc += (f" Default optimizer: --optimizer {cls.default_optimizer} --tau "
                        f"{cls.default_tau:g}.")
            self.group.title = f"settings of --method {values}"
            self.group.description = doc.strip() or None


def add_method_flags(parser, default="backprop", help=None):
    """Add ``--method`` (alias ``--algorithm``) and one flag per method setting to ``parser``
    (a parser or an argument group). Returns the ``--method`` action."""
    table = settings_table()
    action = parser.add_argument(
        "--method", "--algorithm", dest="method", choices=tuple(METHODS), default=default,
        action=ChooseMethod,
        help=help or f"training method (default {default}); '--method NAME --help' shows its "
                     f"settings, which take their defaults from the method")
    action.group = parser if hasattr(parser, "title") else None  # an argument group
    action.settings = {}
    for name, owners in table.items():
        action.settings[name] = parser.add_argument(
            flag(name), dest=name, default=None, metavar=name.upper(), help=generic_help(owners))
    return action


def _as_flags(message, names):
    """A method's error message with its settings as flags (``solver='cg'`` -> ``--solver cg``)."""
    for name in sorted(names, key=len, reverse=True):
        message = re.sub(rf"\b{name}=(['\"]?)([^'\",)\s]+)\1", rf"{flag(name)} \2", message)
        message = re.sub(rf"(?<![-\w]){name}\b", flag(name), message)
    return message


def method_from_args(args):
    """The method object that ``--method`` and the setting flags of ``args`` name.

    A flag's text is converted to the chosen method's type for that setting (values already
    converted, e.g. by a command's own flag of the same name, are taken as they are).

    Raises
    ------
    ValueError
        For a flag the chosen method does not have, a text that is not of the setting's type,
        or a value the method refuses (the message names the flags).
    """
    table = settings_table()
    given = {name: getattr(args, name) for name in table if getattr(args, name, None) is not None}
    own = {name: tp for name, _, tp, _ in method_settings(METHODS[args.method])}
    for name in given:
        if name not in own:
            raise ValueError(f"{flag(name)} only applies to --method {' or '.join(table[name])}, "
                             f"not {args.method}")
    given = {name: convert(value, own[name], name) if isinstance(value, str) else value
             for name, value in given.items()}
    try:
        return make_method(args.method, **given)
    except (TypeError, ValueError) as err:
        raise ValueError(_as_flags(str(err), table)) from None
