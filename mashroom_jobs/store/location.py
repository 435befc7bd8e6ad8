"""Where the job store is: the ``store`` setting read as a path, the default path, the
network file systems on which SQLite's locks cannot be trusted, and who this process is
in the store (its origin).

Apart from the store class because settings, the extension and the command line need these
without opening a store.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile

from ..core.errors import StoreError

log = logging.getLogger("mashroom_jobs.store")

URL_PREFIX = "sqlite:///"
#: file systems on which SQLite's locks (and so WAL) are unreliable
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "gpfs", "beegfs", "orangefs", "pvfs2", "davfs", "fuse.davfs2",
    "fuse.sshfs", "sshfs", "fuse.ceph", "fuse.glusterfs", "fuse.gcsfuse", "gcsfuse",
    "fuse.s3fs", "s3fs", "fuse.rclone", "fuse.juicefs", "fuse.cephfs", "fuse.lizardfs",
    "fuse.moosefs", "fuse.mfs", "fuse.blobfuse", "fuse.blobfuse2", "fuse.goofys",
})


def store_location(value: object, *, none: str = "None") -> str:
    """The file path a ``store`` setting names: a path, or a ``sqlite:///PATH`` URL.

    As in SQLAlchemy, ``sqlite:///jobs.sqlite`` is relative (to the working directory)
    and ``sqlite:////home/me/jobs.sqlite`` absolute; ``~`` is expanded.  ``none`` is
    how the caller spells "no store" in messages (the command line's ``none``).

    Raises
    ------
    ValueError
        For anything else, saying what a valid value looks like.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"store must be a file path or a sqlite:///PATH URL, "
                         f"got {type(value).__name__}")
    path = value
    if value == ":memory:" or value.startswith("file::memory:"):
        raise ValueError(f"store {value!r} is an in-memory database, which no other process "
                         f"can share: use {none} to keep runs in this process's memory")
    if value.lower().startswith("file:"):  # SQLite's URI filenames are not read as URIs here
        plain = _file_uri_path(value)
        raise ValueError(f"store {value!r} is a file: URI, which would be read as a folder "
                         f"named 'file:': give the path itself ({plain!r}) or "
                         f"'sqlite:///{plain}'")
    if value.startswith(URL_PREFIX):
        path = value[len(URL_PREFIX):]
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme.lower() == "sqlite":
            raise ValueError(f"invalid store URL {value!r}: a SQLite URL has no host; write "
                             f"sqlite:///relative/path or sqlite:////absolute/path")
        raise ValueError(f"unsupported store {value!r}: the job store is a SQLite file; give "
                         f"its path or a sqlite:///PATH URL")
    if not path.strip():
        raise ValueError(f"store {value!r} names no file: give a path, or {none} to keep runs "
                         f"in memory")
    if "\0" in path:
        raise ValueError(f"store {value!r} contains a NUL character")
    full = os.path.abspath(os.path.expanduser(path))
    if path.endswith(("/", os.sep)) and not os.path.isdir(full):  # (a folder: said on open)
        raise ValueError(f"store {value!r} names a folder: give a file in it, such as "
                         f"{os.path.join(full, 'store.sqlite')!r}")
    _check_name_lengths(value, full)
    return full


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"


def _file_uri_path(uri: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(uri.split("?", 1)[0]).path) or uri[len("file:"):]


def _check_name_lengths(value: str, full: str) -> None:
    """A ValueError when a part of ``full`` is longer than its file system allows (the
    open would fail with SQLite's vague 'unable to open database file')."""
    folder = os.path.dirname(full)
    while folder and not os.path.isdir(folder):  # the nearest folder that exists
        folder = os.path.dirname(folder) if os.path.dirname(folder) != folder else ""
    try:
        limit = os.pathconf(folder or "/", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # (no pathconf on Windows)
        limit = 255
    for part in full.split(os.sep):
        size = len(os.fsencode(part))
        if size > limit:
            raise ValueError(f"store {_shown(value)}: the name {part[:20]}... is {size} bytes "
                             f"long; the file system allows at most {limit}")


def _unescape_mount(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def network_filesystem(path: str, mounts: str = "/proc/mounts") -> str | None:
    """The type of the network file system ``path``'s folder is on, or None.

    Reads the mount table ``mounts`` (Linux's ``/proc/mounts`` by default; a missing
    or unreadable table means "not known to be remote") and picks the mount with the
    longest mount point containing the folder's real path.
    """
    # (realpath resolves the symbolic links of the part that exists, and keeps the rest)
    real = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best, fstype = -1, ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = point == "/" or real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # a later mount on the same point hides earlier
            best, fstype = len(point), fields[2]
    return fstype if fstype in NETWORK_FILESYSTEMS else None


def temp_store_path() -> str:
    """This user's store path in the system's temporary folder (a local disk, usually)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return os.path.join(tempfile.gettempdir(), f"mashroom-jobs-{uid}", "store.sqlite")


def local_store_path(mounts: str = "/proc/mounts") -> str:
    """A store path on a local disk, for when the default folder is on a network file
    system: the Jupyter runtime folder when it is local, else a folder of this user's in
    the system's temporary folder (``/tmp/mashroom-jobs-UID/store.sqlite``)."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = os.path.join(jupyter_runtime_dir(), "mashroom-jobs-store.sqlite")
    if network_filesystem(runtime, mounts) is None:
        return runtime
    path = temp_store_path()
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and os.stat(folder).st_uid != os.getuid():
        # someone else made it: their file would hold this user's runs
        raise StoreError(f"cannot use {folder} for the job store: it belongs to another user")
    return path


def default_store_path(mounts: str = "/proc/mounts") -> str:
    """Where the extension and ``mashroom-jobs run`` keep the store unless configured:
    ``mashroom-jobs/store.sqlite`` in the Jupyter data folder (``jupyter --data-dir``),
    or a local folder (:func:`local_store_path`, with one warning naming both paths) when
    that is on a network file system."""
    from jupyter_core.paths import jupyter_data_dir

    path = os.path.join(jupyter_data_dir(), "mashroom-jobs", "store.sqlite")
    fstype = network_filesystem(path, mounts)
    if fstype is None:
        return path
    local = local_store_path(mounts)
    log.warning("mashroom-jobs: %s is on a network file system (%s), where SQLite's locks are "
                "unreliable: the job store is %s instead", os.path.dirname(path), fstype, local)
    return local


def file_identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of the file at ``path``, None when there is none: a file
    deleted and made anew at the same path has another."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def make_origin(kernel_id: str | None = None) -> str:
    """Who this process is in the store: ``host pid 1234``, with `` kernel ID`` in a kernel."""
    origin = f"{socket.gethostname()} pid {os.getpid()}"
    return f"{origin} kernel {kernel_id}" if kernel_id else origin
