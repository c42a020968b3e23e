"""Storage adapters that implement :mod:`coinecon.ports`.

* :mod:`coinecon.adapters.memory`: in-memory, for tests and simulations.
"""
