"""Sphinx configuration for the coinecon docs (MyST Markdown, autodoc)."""

from __future__ import annotations

import importlib.metadata

project = "coinecon"
author = "The coinecon team"
copyright = "2026, The coinecon team"
release = importlib.metadata.version("coinecon")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No intersphinx: the docs build runs without network access, so references to
# the standard library and to hypothesis are left as plain text (see below).
nitpick_ignore_regex = [
    # Type aliases and typing internals that Sphinx cannot resolve in signatures.
    (r"py:.*", r"(fractions\.)?Fraction|(decimal\.)?Decimal|datetime(\.\w+)?|.*ExactNumber"),
    (r"py:.*", r"(datetime\.)?(date|timedelta)"),
    (r"py:.*", r"(collections\.abc\.)?(Sequence|Iterable|Iterator|Mapping|Callable|Collection)"),
    (r"py:.*", r"(dateutil\.relativedelta\.)?relativedelta|(types\.)?TracebackType|_State"),
    (r"py:.*", r".*\._Contract|(os\.)?PathLike|(pathlib\.)?Path"),
    (r"py:.*", r"(typing\.)?(NoReturn|Any|Self|Protocol)|int|str|bool|object|None"),
    (r"py:.*", r"hypothesis\..*|st\..*|SearchStrategy"),
    (r"py:.*", r"enum\.Enum|threading\..*|decimal|fractions"),
    (r"py:class", r"(Money|Currency|Rate|Unit|UnitAmount|Rounding)"),
    # Type variables of generic signatures (what a work returns, run returns).
    (r"py:class", r"coinecon\..*\._R"),
]

html_theme = "furo"
html_title = "coinecon"
