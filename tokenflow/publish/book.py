"""Helpers for the book's notebooks."""

from __future__ import annotations


def glue_text(key: str, text: str) -> None:
    """Glue a string for inline use as ``{glue:md}`key``` (no quotes around it)."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(key, Markdown(text), display=False)


class PlainText:
    """A string whose plain-text form is itself (no quotes): for ``{glue:text}`` from another page,
    where ``{glue:md}`` cannot reach (myst-nb pastes Markdown only within its own document)."""

    def __init__(self, text: str) -> None:
        self.text = str(text)

    def __repr__(self) -> str:
        return self.text


def glue_plain(key: str, text: str) -> None:
    """Glue ``text`` for ``{glue:text}`path.ipynb::key``` on another page."""
    from myst_nb import glue

    glue(key, PlainText(text), display=False)


def _install() -> None:
    """House style for the book's kernels: tables (:mod:`tokenflow.publish.tables`) and figures
    (:mod:`tokenflow.publish.style`) for every page, without the notebooks asking."""
    from . import style, tables

    tables.install()
    style.install()


_install()
