"""minicc: a terminal-first, lightweight call center."""

__version__ = "0.1.0"
