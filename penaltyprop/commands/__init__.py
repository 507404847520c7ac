"""The commands of ``python -m penaltyprop``, one module each, and what they share.

Each command module has ``add(subparsers)``, which creates its parser and sets
``func=run``, and ``run(args) -> int``; :mod:`penaltyprop.cli` lists them and dispatches.
"""
