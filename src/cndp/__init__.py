"""pycndp: the Cloud Native Data Plane in Python."""

__version__ = "0.1.0"
