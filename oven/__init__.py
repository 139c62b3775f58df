"""oven: a supervised actor service that captures canvas pieces in headless Chromium."""

__version__ = "0.1.0"
