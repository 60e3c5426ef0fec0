"""pressreview: a press-review and newsletter publishing pipeline."""

__version__ = "0.1.0"
