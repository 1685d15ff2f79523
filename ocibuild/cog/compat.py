"""The Cog release whose image contract ocibuild reproduces: the version of the bundled runner's API.

The OpenAPI document's ``info.version`` and the ``run.cog.version`` label carry it; the schema's shape follows
Cog 0.22+ (see docs/cog-schema.md).
"""

from ocibuild.sources.runner import runner_version

COG_VERSION = runner_version()
