#!/bin/sh
# Build ocibuild's own image with ocibuild: the wheel of this checkout, then the Cog project beside this script.
#   scripts/ocibuild-image/build.sh [ocibuild build options...]   e.g. -t registry.example/tools/ocibuild:0.1.0 --push
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=${OCIBUILD_SRC:-$(cd "$here/../.." && pwd)}
python=${PYTHON:-$repo/.venv/bin/python}
rm -rf "$here/wheels"
"$python" -m uv build --wheel --quiet -o "$here/wheels" "$repo"
exec "$python" -m ocibuild build "$here" --find-links "$here/wheels" "$@"
