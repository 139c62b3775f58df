"""Tests of the capture engine (real Chromium)."""
