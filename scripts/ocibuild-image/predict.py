"""A Cog model that builds Cog models: ``predict(project=<a .tar.gz of a project>)`` returns its image as a tarball.

Fleets run the CLI instead (``python -m ocibuild build /workspace/project --push ...``, docs/fleet-cache.md);
this predictor makes the image a valid Cog model too, and is a smoke test of the packaged ocibuild.
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cog import BasePredictor, Input
from cog import Path as CogPath


class Predictor(BasePredictor):
    def predict(
        self,
        project: CogPath = Input(description="a .tar.gz holding cog.yaml at its top"),  # noqa: B008 - Cog's way
    ) -> CogPath:
        work = Path(tempfile.mkdtemp(prefix="ocibuild-"))
        with tarfile.open(project) as archive:
            archive.extractall(work / "project", filter="data")
        output = work / "image.tar"
        cmd = [sys.executable, "-m", "ocibuild", "build", str(work / "project"), "--tarball", str(output), "-q"]
        subprocess.run(cmd, check=True)
        return CogPath(output)
