"""Loaded by Python at start-up from PYTHONPATH: installs nat_lab's moto patches (see
nat_lab/moto_shims/__init__.py). Only the moto server is started with this directory on its path."""

try:
    from nat_lab.moto_shims import install
except ImportError:  # an interpreter without nat_lab (or moto): nothing to patch
    pass
else:
    install()
