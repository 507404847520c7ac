"""The package's version, written once.

``penaltyprop.__version__``, ``penaltyprop --version``, the package metadata (pyproject.toml
reads it from here) and the records that results files and checkpoints keep all come from
:data:`__version__`.
"""
from __future__ import annotations

#: the release, as ``MAJOR.MINOR.PATCH`` (see CHANGELOG.md)
__version__ = "0.1.0"


def package_record() -> dict:
    """What wrote a results file or checkpoint: ``{"name": "penaltyprop", "version": ...}``.

    Results files (``results.json``, ``history.json``) and checkpoints store it beside their
    contents, never among the settings that a resumed run must match: a run resumed under a
    newer release records the newer one.
    """
    return {"name": "penaltyprop", "version": __version__}
