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
    # psycopg and its pool (the postgres extra), and the adapter's alias of a
    # psycopg connection; a bare StorageError, as the bare value types above.
    (r"py:.*", r"psycopg(_pool)?\..*|Connection|StorageError"),
]

html_theme = "furo"
html_title = "coinecon"


def _canonical(target: str) -> str | None:
    """*target* (``package.Name.attr``, a name re-exported by a package) under
    the module that defines it and where autodoc documents it, or ``None``."""
    import importlib  # noqa: PLC0415 (only the build needs it)

    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        name = parts[cut]
        value = getattr(found, name, None)
        module = getattr(value, "__module__", None)
        if value is None or not isinstance(module, str) or module == ".".join(parts[:cut]):
            return None
        return ".".join([module, getattr(value, "__qualname__", name), *parts[cut + 1 :]])
    return None


def _resolve_reexported(app, env, node, contnode):  # noqa: ANN001, ANN202 (Sphinx's hook)
    """Resolve a reference to a name through the package that re-exports it
    (``coinecon.gifts.GiftPolicy``) to where it is documented."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("coinecon."):
        return None
    canonical = _canonical(target)
    if canonical is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node.get("refdoc"), app.builder, node["reftype"], canonical, node, contnode
    )


def setup(app):  # noqa: ANN001, ANN201 (Sphinx's hook)
    """Resolve references through re-exporting packages (see above)."""
    app.connect("missing-reference", _resolve_reexported)
