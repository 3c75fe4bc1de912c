"""tuimail: a keyboard-driven terminal mail reader."""

__version__ = "0.1.0"
