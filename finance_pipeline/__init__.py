"""Finance automation for a multi-channel wholesale curtain business."""

__version__ = "0.1.0"
