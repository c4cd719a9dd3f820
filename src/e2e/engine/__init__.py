"""The one training engine shared by every application."""

from e2e.engine.trainer import fit

__all__ = ["fit"]
