"""Benchmarks and a soak test for Mission Control.

``python -m bench`` (``make bench``) measures each figure against a baseline
taken in the same run and writes the table to ``docs/performance.md``;
``python -m bench.soak`` (``make soak``) holds a mixed load through the API
and checks the invariants afterwards. Both have a ``--quick`` mode that CI
runs so they cannot rot.
"""
