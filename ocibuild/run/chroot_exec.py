"""The fallback runtime's init: inside fresh namespaces (made by ``unshare``), set up the mounts of an OCI
runtime config on its rootfs, chroot into it and exec its process.

Run as ``python -m ocibuild.run.chroot_exec CONFIG_JSON``. Mount targets are resolved inside the rootfs, so a
symlink in the image cannot redirect a mount onto the host. Masked/read-only /proc paths and device cgroups
are runc features this fallback does not reproduce.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import resource
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from ocibuild.run.paths import make_parents, resolve, split_image_path

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
FLAG_OPTIONS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
IGNORED_OPTIONS = {"rw", "rbind", "bind", "strictatime", "relatime", "newinstance"}
HOST_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: Path, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        source.encode(), str(target).encode(), fstype.encode() if fstype else None, flags, data.encode() or None
    )
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _target(root: Path, destination: str, directory: bool) -> Path:
    path = resolve(root, split_image_path(destination), follow_last=True)
    make_parents(root, path)
    if directory:
        path.mkdir(exist_ok=True)
    elif not path.exists():
        path.touch()
    return path


def _flags_and_data(options: list[str]) -> tuple[int, str]:
    flags, data = 0, []
    for option in options:
        if option in FLAG_OPTIONS:
            flags |= FLAG_OPTIONS[option]
        elif option not in IGNORED_OPTIONS:
            data.append(option)
    return flags, ",".join(data)


def bind(source: str, target: Path, readonly: bool) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        mount("", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def setup_mount(root: Path, spec_mount: dict[str, Any]) -> None:
    kind = spec_mount.get("type", "none")
    options = list(spec_mount.get("options", []))
    destination = spec_mount["destination"]
    if kind == "cgroup":
        return
    if kind in ("bind", "none") or "rbind" in options or "bind" in options:
        source = spec_mount["source"]
        bind(source, _target(root, destination, os.path.isdir(source)), "ro" in options)
        return
    target = _target(root, destination, True)
    if kind == "sysfs":
        bind("/sys", target, True)
        return
    flags, data = _flags_and_data(options)
    try:
        mount(spec_mount.get("source", kind), target, kind, flags, data)
    except OSError:
        if kind not in ("devpts", "mqueue"):
            raise
        return
    if destination == "/dev":
        populate_dev(target)


def populate_dev(dev: Path) -> None:
    """The usual device nodes (bound from the host) and /dev/fd links in a fresh tmpfs /dev."""
    for name in HOST_DEVICES:
        (dev / name).touch()
        bind(f"/dev/{name}", dev / name, False)
    for name, target in DEV_LINKS.items():
        os.symlink(target, dev / name)
    os.symlink("pts/ptmx", dev / "ptmx")


def loopback_up() -> None:
    """Bring up ``lo`` of a fresh network namespace (runc does this itself)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def main(config_path: str) -> None:
    spec = json.loads(Path(config_path).read_text())
    if any(ns["type"] == "network" for ns in spec.get("linux", {}).get("namespaces", [])):
        loopback_up()
    root = Path(spec["root"]["path"])
    for spec_mount in spec.get("mounts", []):
        setup_mount(root, spec_mount)
    for device in spec.get("linux", {}).get("devices", []):
        bind(device["path"], _target(root, device["path"], False), False)
    for hook in spec.get("hooks", {}).get("createRuntime", []):  # as runc: namespaces made, process not started
        env = dict(item.partition("=")[::2] for item in hook.get("env", []))
        if subprocess.run([hook["path"], *hook["args"][1:]], input=b'{"pid": 0}', env=env).returncode != 0:
            sys.exit(1)  # the hook said why
    process = spec["process"]
    with contextlib.suppress(OSError):
        socket.sethostname(spec.get("hostname") or "ocibuild")
    for limit in process.get("rlimits", []):
        resource.setrlimit(getattr(resource, limit["type"]), (limit["soft"], limit["hard"]))
    os.chroot(root)
    cwd = process.get("cwd") or "/"
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    uid, gid = process["user"]["uid"], process["user"]["gid"]
    if (uid, gid) != (os.getuid(), os.getgid()):
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    env = dict(item.partition("=")[::2] for item in process["env"])
    args = process["args"]
    try:
        os.execvpe(args[0], args, env)
    except OSError as exc:
        print(f"ocibuild: cannot start {args[0]!r} in the container: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1])
