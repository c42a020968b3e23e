"""Storage adapters that implement :mod:`coinecon.ports`.

* :mod:`coinecon.adapters.memory`: in-memory, for tests and simulations.
* :mod:`coinecon.adapters.sqlite`: the embedded default, on one SQLite file.
* :mod:`coinecon.adapters.postgres`: PostgreSQL, for hosts with many app
  servers on one database (the ``postgres`` extra: psycopg 3).
"""
