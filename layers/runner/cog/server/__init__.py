"""The Cog-compatible HTTP runner: ``python -m cog.server.http``."""
