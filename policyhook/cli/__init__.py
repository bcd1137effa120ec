"""policyctl: the command line over policyhook.api."""

from .main import main

__all__ = ["main"]
