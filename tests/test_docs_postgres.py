"""The examples of docs/postgres.md, run against the real server.

The page's examples are ```python blocks (not doctests): each is a complete
script that connects with ``COINECON_POSTGRES`` and works in the schema
``"coinecon"``. This test takes every block from the page and runs it, each in
a fresh schema of its own (put in place of ``schema="coinecon"`` and of the
name given to ``sql.Identifier``), dropped afterwards, with
``COINECON_POSTGRES`` set to the server the other PostgreSQL tests use.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from postgres_kit import conninfo, drop_schema, new_schema

PAGE = Path(__file__).resolve().parents[1] / "docs" / "postgres.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
SCHEMA_NAMES = ('schema="coinecon"', 'sql.Identifier("coinecon")')


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_page_has_its_examples() -> None:
    found = blocks()
    assert len(found) >= 4
    for block in found:
        assert 'os.environ.get("COINECON_POSTGRES"' in block
        assert 'schema="coinecon"' in block  # the name the test replaces


@pytest.mark.parametrize("number", range(len(blocks())))
def test_an_example_runs_against_the_server(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINECON_POSTGRES", conninfo())
    schema = new_schema()
    source = blocks()[number]
    for name in SCHEMA_NAMES:
        source = source.replace(name, name.replace('"coinecon"', f'"{schema}"'))
    assert '"coinecon"' not in source
    try:
        code = compile(source, f"{PAGE.name}, example {number + 1}", "exec")
        exec(code, {"__name__": f"postgres_example_{number + 1}"})  # noqa: S102 (the docs' own code)
    finally:
        drop_schema(schema)
