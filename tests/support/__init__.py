"""Helpers shared by the test modules.

Test modules import helpers from here (or get fixtures from a conftest.py), never from
each other: a test module then changes only when its tests do.
"""
