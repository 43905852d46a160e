"""Converting a master image for a target's ``convert_to`` (README "Converting images").

The one place glancesync writes image files (everywhere else the bytes stream from the
master to the regions): qemu-img needs a file to read and writes a file. Both live in
``spool_dir`` under ``glancesync-convert-*`` names and are removed when the upload is
over, whatever happened: a cancel or an interrupt kills qemu-img first.

Why qemu-img is fenced in: a disk image is untrusted input to a C parser. So the input
format is always given (``-f``, never probed), the header is checked before qemu-img
opens the file (``glancesync.imagecheck``), and qemu-img runs under ``prlimit`` limits of
address space and CPU time, as Glance runs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from glancesync import converted, imagecheck
from glancesync.backends.base import ImageSource
from glancesync.errors import BackendError, Cancelled, ErrorKind
from glancesync.image import Image

QEMU_IMG = "qemu-img"
PRLIMIT = "prlimit"
GIB = 1 << 30
# Glance's limits for ``qemu-img info`` (glance.async_.flows.base_import / plugins).
INFO_LIMITS = (GIB, 30)  # address space bytes, CPU seconds
CONVERT_ADDRESS_SPACE = 2 * GIB
CONVERT_CPU_BASE, CONVERT_CPU_PER_GIB = 120, 60  # CPU seconds: base + per GiB of virtual size
POLL_SECONDS = 0.2
CHUNK = 1 << 20


class ConversionRefused(BackendError):
    """The master image is not converted: unsafe, too large, or qemu-img failed on it."""

    default_kind = ErrorKind.CONTENT


@dataclass(frozen=True)
class Converted:
    """The converted file and what the upload is verified against; also the upload's
    ``ImageSource``."""

    path: str
    size: int
    md5: str
    hash_value: str  # in the master's os_hash_algo ("" when it has none)
    virtual_size: int

    def chunks(self) -> Iterator[bytes]:
        if not self.path:
            return  # a simulated copy (mock backend)
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


Cancel = Callable[[], bool]


def spool_directory(spool_dir: str | None) -> str:
    return spool_dir or tempfile.gettempdir()


@contextlib.contextmanager
def converted_file(
    full: str,
    master: Image,
    convert_to: str,
    source: ImageSource,
    spool_dir: str | None,
    cancel: Cancel,
) -> Iterator[Converted]:
    """Read the master into the spool, check it, convert it; both files removed on exit.

    Refusals are ``ConversionRefused`` errors whose message names the region ``full``.
    A synthetic source (the mock backend's, which has no bytes) gets a simulated copy:
    the same size, an md5 derived from the master's checksum, no file."""
    if getattr(source, "synthetic", False):
        digest = hashlib.md5(f"{convert_to}:{master.checksum}".encode(), usedforsecurity=False)
        yield Converted("", master.size, digest.hexdigest(), "", master.size)
        return
    directory = spool_directory(spool_dir)
    fmt = converted.QEMU_FORMAT[master.disk_format]
    with _spool_file(directory, "in") as raw_in, _spool_file(directory, "out") as out:
        try:
            md5 = _download(source, raw_in, cancel)
            # the safety checks first: unsafe data is refused whatever record it came with
            virtual = _checked_virtual_size(master, fmt, raw_in, directory, cancel)
            if master.checksum and md5 != master.checksum:
                reason = f"checksum mismatch (expected {master.checksum}, got {md5})"
                raise _refused(master, f"master data: {reason}")
            cpu = CONVERT_CPU_BASE + CONVERT_CPU_PER_GIB * (virtual // GIB + 1)
            args = ["convert", "-f", fmt, "-O", convert_to, raw_in, out]
            _run(args, CONVERT_ADDRESS_SPACE, cpu, cancel, master)
            os.unlink(raw_in)  # the space back before the upload
            md5, hash_value, size = _hashes(out, master.os_hash_algo, cancel)
        except ConversionRefused as exc:
            raise ConversionRefused(f"{full}: {exc}") from None
        yield Converted(out, size, md5, hash_value, virtual)


@contextlib.contextmanager
def _spool_file(directory: str, role: str) -> Iterator[str]:
    handle, path = tempfile.mkstemp(prefix=f"glancesync-convert-{role}-", dir=directory)
    os.close(handle)
    try:
        yield os.path.abspath(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _download(source: ImageSource, path: str, cancel: Cancel) -> str:
    """The master's bytes into ``path``; their md5, checked against the master's checksum
    like any copy."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as handle:
        for chunk in source.chunks():
            md5.update(chunk)
            handle.write(chunk)
            if cancel():
                raise Cancelled()
    return md5.hexdigest()


def _checked_virtual_size(
    master: Image, fmt: str, path: str, directory: str, cancel: Cancel
) -> int:
    with open(path, "rb") as handle:
        head = handle.read(imagecheck.HEADER_BYTES)
        descriptor = b""
        span = imagecheck.vmdk_descriptor_span(head) if fmt == "vmdk" else None
        if span is not None:
            handle.seek(span[0])
            descriptor = handle.read(span[1])
    refusal = imagecheck.header_refusal(master.disk_format, head, descriptor)
    if refusal is None:
        info = json.loads(
            _run(["info", "--output=json", "-f", fmt, path], *INFO_LIMITS, cancel, master)
        )
        refusal = imagecheck.info_refusal(master.disk_format, info)
    if refusal is None:
        virtual = int(info["virtual-size"])
        refusal = imagecheck.space_refusal(virtual, shutil.disk_usage(directory).free, directory)
    if refusal is not None:
        raise _refused(master, refusal)
    return virtual


def _run(args: list[str], address_space: int, cpu: int, cancel: Cancel, master: Image) -> str:
    """qemu-img under prlimit; polled so that a cancel or an interrupt kills it."""
    command = [PRLIMIT, f"--as={address_space}", f"--cpu={cpu}", "--", QEMU_IMG, *args]
    try:
        process = subprocess.Popen(  # noqa: S603 - fixed program, our own file paths
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except FileNotFoundError as exc:
        raise _refused(master, f"{exc.filename} is not installed (Debian's qemu-utils)") from None
    try:
        while True:
            try:
                out, err = process.communicate(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if cancel():
                    raise Cancelled() from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        text = " ".join((err or "").split())[-300:] or f"exit status {process.returncode}"
        raise _refused(master, f"qemu-img {args[0]} failed: {text}")
    return out


def _hashes(path: str, algo: str, cancel: Cancel) -> tuple[str, str, int]:
    """md5 (Glance's checksum) and the master's multihash algorithm over the converted file."""
    md5 = hashlib.md5(usedforsecurity=False)
    other = hashlib.new(algo) if algo else None
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            if other is not None:
                other.update(chunk)
            size += len(chunk)
            if size % (256 * CHUNK) == 0 and cancel():
                raise Cancelled()
    return md5.hexdigest(), other.hexdigest() if other else "", size


def _refused(master: Image, reason: str) -> ConversionRefused:
    return ConversionRefused(f"Image {master.name} not converted: {reason}")
