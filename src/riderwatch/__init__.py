"""RiderWatch: delivery riders as a community public-safety team."""

__version__ = "0.1.0"
