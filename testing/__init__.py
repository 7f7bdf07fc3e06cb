"""Test infrastructure shared by the tests, the benchmarks and the demo: servers on 127.0.0.1.

Nothing here ships to Beam workers (``setup.py`` installs only ``filters``, ``pipelines`` and ``trainer``).
"""
