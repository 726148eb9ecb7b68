from setuptools import setup

# All metadata lives in pyproject.toml; this shim serves tools that still call setup.py.
setup()
