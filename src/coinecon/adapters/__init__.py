"""Storage adapters that implement :mod:`coinecon.ports`.

* :mod:`coinecon.adapters.memory`: in-memory, for tests and simulations.
* :mod:`coinecon.adapters.sqlite`: the embedded default, on one SQLite file.
"""
