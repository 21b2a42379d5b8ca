"""Stowage runtime: media storage on local disk or S3, with one API and one CLI."""

__version__ = "0.1.0"
