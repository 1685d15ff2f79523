"""The Cog release whose image contract and schema shape ocibuild reproduces (see docs/cog-schema.md)."""

COG_VERSION = "0.22.0"
