"""What docs/api.md says about where public names are imported from is true."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import coinecon

API = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def test_every_name_in_coinecon_all_is_importable_and_documented() -> None:
    for name in coinecon.__all__:
        value = getattr(coinecon, name)
        assert value.__doc__, name


def test_the_names_api_md_says_come_from_their_modules_do() -> None:
    text = API.read_text()
    intro = text.split("## ", 1)[0]
    named = re.findall(r"`(coinecon(?:\.\w+)+)`", intro)
    assert "coinecon.adapters.sqlite.SqliteStore" in named
    assert "coinecon.ledger.journal.check_rules" in named
    for dotted in named:
        module_name, _, attribute = dotted.rpartition(".")
        try:
            importlib.import_module(dotted)  # a module
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module_name), attribute), dotted
    for adapter in ("SqliteStore", "MemoryStore", "check_rules"):
        assert adapter not in coinecon.__all__  # as the page says: not wired at import


def test_every_member_the_reference_documents_exists() -> None:
    text = API.read_text()
    for module_name, members in re.findall(
        r"\.\. automodule:: ([\w.]+)\n   :members: ([^\n]+)", text
    ):
        module = importlib.import_module(module_name)
        for member in (m.strip() for m in members.split(",")):
            assert hasattr(module, member), f"{module_name}.{member}"
