"""``python -m ocibuild`` runs the CLI."""

import sys

from ocibuild.cli import main

sys.exit(main())
