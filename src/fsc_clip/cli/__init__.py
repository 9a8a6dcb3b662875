"""Command-line interface. ``main.py`` holds the command table; each command lives in its own module."""
