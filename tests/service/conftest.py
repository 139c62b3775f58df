"""README claims checked through a real `oven serve` (tests/conftest.py's start_oven)."""
