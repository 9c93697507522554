"""Parley's benchmark: what users feel, through the real adapters and the loopback fakes.

python -m bench [--quick] [--scenario NAME ...] [--n N] [--json]
"""
