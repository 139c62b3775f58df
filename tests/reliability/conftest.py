"""The fault suite drives real `oven serve` processes through tests/conftest.py's start_oven:
each service gets its own workdir, and teardown stops it and asserts nothing it started lives."""
