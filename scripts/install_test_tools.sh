#!/usr/bin/env bash
# Install the system tools the test suite drives (independent checkers and runtimes), when missing.
set -euo pipefail

need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci runc:runc busybox:busybox-static \
            pigz:pigz mmdebstrap:mmdebstrap gpgv:gpgv htpasswd:apache2-utils podman:podman ldconfig:libc-bin \
            slirp4netns:slirp4netns nsenter:util-linux chromium:chromium \
            chromedriver:chromium-driver; do
    tool="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$tool" >/dev/null 2>&1 || need+=("$pkg")
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)

if [ "${#need[@]}" -gt 0 ]; then
    echo "install_test_tools: apt-get install ${need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
