"""Test support for coinecon and for host applications that use it.

:mod:`coinecon.testing.strategies` holds hypothesis strategies for every
coinecon value. This package needs the ``testing`` extra
(``pip install coinecon[testing]``), which brings hypothesis and pytest.
"""
