"""The OCI runtime config (``config.json``) for one container, from an image config and run options.

It mirrors what ``docker run`` sets up: namespaces, ``/proc``, a tmpfs ``/dev`` with ``/dev/pts``, ``/dev/shm``
and ``/dev/mqueue``, read-only ``/sys``, a tmpfs ``/tmp``, the default capabilities, masked ``/proc`` paths,
rlimits lowered to what this host allows, ``terminal: false``; a private network namespace (loopback only;
``network.py`` publishes ports into it) or host networking (with the host's resolv.conf, hosts and
hostname). As non-root it adds a user namespace mapping the caller to root (rootless runc).
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.cogimage import SYSTEM_PATH
from ocibuild.errors import UserInputError
from ocibuild.run.gpu import GpuSetup, apply_gpu_env
from ocibuild.run.paths import read_text_in

CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
HOST_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")
NETWORKS = ("private", "host")


@dataclass(frozen=True)
class BindMount:
    source: str
    destination: str
    readonly: bool = False


@dataclass
class RunOptions:
    """What ``ocibuild run`` adds to the image config. ``command`` replaces Cmd (Entrypoint is kept)."""

    command: Sequence[str] | None = None
    env: Sequence[str] = ()
    volumes: Sequence[BindMount] = ()
    network: str = "host"
    gpu: GpuSetup | None = None
    user: str | None = None
    cwd: str | None = None


def parse_volume(text: str) -> BindMount:
    """``-v SRC:DST[:ro|rw]``; SRC must exist on the host and DST must be absolute."""
    parts = text.split(":")
    mode = "rw"
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1].startswith("/"):
        raise UserInputError(f"-v {text}: expected SRC:DST[:ro] with an absolute DST")
    source = Path(parts[0]).expanduser().resolve()
    if not source.exists():
        raise UserInputError(f"-v {text}: {source} does not exist")
    return BindMount(str(source), parts[1], mode == "ro")


def merge_env(base: Sequence[str], extra: Sequence[str]) -> dict[str, str]:
    """Image Env then ``-e K=V`` (a bare ``-e K`` copies the host's value, like docker)."""
    env: dict[str, str] = {}
    for item in base:
        key, _, value = item.partition("=")
        env[key] = value
    for item in extra:
        key, sep, value = item.partition("=")
        if not key:
            raise UserInputError(f"-e {item}: expected KEY=VALUE")
        if sep:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("PATH", SYSTEM_PATH)
    return env


def resolve_user(rootfs: Path, user: str) -> tuple[int, int]:
    """``user[:group]`` (names or numbers) -> uid, gid, using the image's /etc/passwd and /etc/group."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    passwd = _table(read_text_in(rootfs, "/etc/passwd"))
    if name.isdigit():
        uid = int(name)
        gid = next((int(row[3]) for row in passwd.values() if row[2] == name), 0)
    elif name in passwd:
        uid, gid = int(passwd[name][2]), int(passwd[name][3])
    else:
        raise UserInputError(f"image User {user!r}: no user {name!r} in the image's /etc/passwd")
    if group:
        groups = _table(read_text_in(rootfs, "/etc/group"))
        if group.isdigit():
            gid = int(group)
        elif group in groups:
            gid = int(groups[group][2])
        else:
            raise UserInputError(f"image User {user!r}: no group {group!r} in the image's /etc/group")
    return uid, gid


def _table(text: str | None) -> dict[str, list[str]]:
    rows = [line.split(":") for line in (text or "").splitlines() if line and not line.startswith("#")]
    return {row[0]: row for row in rows if len(row) >= 4 and row[2].isdigit() and row[3].lstrip("-").isdigit()}


def process_args(config: dict[str, Any], command: Sequence[str] | None) -> list[str]:
    args = list(config.get("Entrypoint") or []) + list(command if command else config.get("Cmd") or [])
    if not args:
        raise UserInputError("the image has no Entrypoint or Cmd: give a command to run")
    return args


def _rlimits() -> list[dict[str, Any]]:
    limits = []
    for name in ("NOFILE", "NPROC"):
        _, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
        value = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
        limits.append({"type": f"RLIMIT_{name}", "hard": value, "soft": value})
    return limits


def _base_mounts(rootless: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
            + ([] if rootless else ["gid=5"]),
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    ]
    if rootless:
        mounts.append(
            {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
        )
    else:
        mounts.append(
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        )
        mounts.append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            }
        )
    return mounts


def _bind(source: str, destination: str, readonly: bool) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", "ro" if readonly else "rw"],
    }


def build_spec(config: dict[str, Any], rootfs: Path, options: RunOptions) -> dict[str, Any]:
    """The runtime config for the image ``config`` (the ``config`` object of the image JSON) on ``rootfs``."""
    if options.network not in NETWORKS:
        raise UserInputError(f"--network {options.network}: expected one of {', '.join(NETWORKS)}")
    rootless = os.geteuid() != 0
    env = merge_env(config.get("Env") or [], options.env)
    if options.gpu is not None:
        apply_gpu_env(env, options.gpu)
    uid, gid = resolve_user(rootfs, options.user if options.user is not None else config.get("User") or "")
    if rootless:
        uid = gid = 0
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": uid, "gid": gid},
        "args": process_args(config, options.command),
        "env": [f"{k}={v}" for k, v in env.items()],
        "cwd": options.cwd or config.get("WorkingDir") or "/",
        "capabilities": {"bounding": CAPABILITIES, "permitted": CAPABILITIES, "effective": CAPABILITIES}
        if uid == 0
        else {"bounding": CAPABILITIES},
        "rlimits": _rlimits(),
        "noNewPrivileges": False,
    }
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    mounts = _base_mounts(rootless)
    if options.network == "private":
        namespaces.append({"type": "network"})
        hostname = "ocibuild"
    else:
        hostname = socket.gethostname()
        mounts += [_bind(path, path, True) for path in HOST_NETWORK_FILES if os.path.exists(path)]
    linux: dict[str, Any] = {"namespaces": namespaces, "maskedPaths": MASKED_PATHS, "readonlyPaths": READONLY_PATHS}
    if rootless:
        namespaces.append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    mounts += [_bind(m.source, m.destination, m.readonly) for m in options.volumes]
    if options.gpu is not None:
        mounts += [_bind(host, inside, True) for host, inside in options.gpu.binds]
        linux["devices"] = [
            {"path": d.path, "type": d.kind, "major": d.major, "minor": d.minor, "fileMode": d.mode, "uid": 0, "gid": 0}
            for d in options.gpu.devices
        ]
        if not rootless:
            linux["resources"] = {
                "devices": [
                    {"allow": True, "type": d.kind, "major": d.major, "minor": d.minor, "access": "rwm"}
                    for d in options.gpu.devices
                ]
            }
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }


def mount_destinations(spec: dict[str, Any]) -> list[str]:
    """Every path the runtime mounts over (or creates as a mount point) inside the rootfs."""
    return [m["destination"] for m in spec["mounts"]]
