"""ocibuild: build Cog-compatible OCI images for ML models without Docker."""

__version__ = "0.1.0"
