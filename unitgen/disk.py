"""A person's disk: a sparse ext4 image of the person's cap, loop-mounted by their data unit
(units/libexec/disk). What fits on one, what a new cap means for it, and how full it is. Pure.

The figures behind `usable` and `inodes` were measured on fresh images made as
units/libexec/disk makes them (mkfs.ext4 -b 4096 -i 16384 -m 0 -J size=16); see
bench/disk/README.md.
"""

import struct
import tarfile
from dataclasses import dataclass
from typing import NamedTuple

from unitgen.errors import BadInput
from unitgen.model import size_bytes

BLOCK = 4096
INODE_RATIO = 16384  # one inode per 16 KiB, whatever the size
JOURNAL = 16 << 20
# Group descriptors, bitmaps and the blocks kept for growing, measured at 18 to 174 MiB
# from 1G to 1T: bounded from above by the least of 96 MiB and 1/16 of the size, plus
# 1/8192 of the size.
SLACK = 96 << 20
FULL = 0.9  # doctor warns from here; a shrink leaves at least a tenth free
GIB = 1 << 30


class Need(NamedTuple):
    """What a set of files takes on a disk: bytes in whole blocks, and inodes."""

    bytes: int
    inodes: int


@dataclass(frozen=True)
class Usage:
    """A disk's use: from statvfs of its mount point, or from its superblock when it is not
    mounted. `size` is what the file system offers for files (df's size)."""

    size: int
    used: int
    inodes: int
    inodes_used: int

    @property
    def ratio(self) -> float:
        """How full it is: of its bytes or of its inodes, whichever runs out first."""
        return max(self.used / self.size if self.size else 1.0,
                   self.inodes_used / self.inodes if self.inodes else 1.0)


def usable(cap: int) -> int:
    """The bytes a fresh disk of `cap` bytes offers for files, never more than measured."""
    tables = cap // INODE_RATIO * 256  # inode tables, 256 bytes an inode
    return cap - tables - JOURNAL - min(cap // 16, SLACK) - cap // 8192


def inodes(cap: int) -> int:
    """The files and folders a fresh disk of `cap` bytes can hold (11 inodes are ext4's)."""
    return cap // INODE_RATIO - 11


def blocks(size: int) -> int:
    """Bytes that `size` bytes of data take in whole blocks."""
    return -(-size // BLOCK) * BLOCK


def need(members: list[tarfile.TarInfo]) -> Need:
    """What an archive's members take once extracted: a block per folder and per long
    symlink (ext4 keeps targets under 60 bytes in the inode), files in whole blocks, and
    an inode for each but hard links. An upper bound, sparse files aside."""
    size, count = 0, 0
    for member in members:
        if member.islnk():
            continue
        count += 1
        if member.isdir():
            size += BLOCK
        elif member.issym():
            size += BLOCK if len(member.linkname.encode()) >= 60 else 0
        else:
            size += blocks(member.size)
    return Need(size, count)


def shown(amount: int) -> str:
    """1610612736 -> 1.5G: a size for people to read, one decimal at most."""
    for exponent, unit in reversed(list(enumerate("KMGT", 1))):
        if amount >= 1 << 10 * exponent:
            return f"{amount / (1 << 10 * exponent):.1f}".removesuffix(".0") + unit
    return f"{amount}B"


def check_fits(what: Need, cap: str, where: str, fix: str) -> None:
    """Refuse, before anything changes, data that a fresh disk of `cap` cannot hold."""
    room = size_bytes(cap)
    if what.bytes > usable(room):
        raise BadInput(f"{where} takes {shown(what.bytes)}, more than a {cap} disk holds "
                       f"({shown(usable(room))}); {fix}")
    if what.inodes > inodes(room):
        raise BadInput(f"{where} holds {what.inodes} files and folders, more than a {cap} "
                       f"disk holds ({inodes(room)}); {fix}")


def smallest(used: int, files: int) -> str:
    """The smallest cap, in whole GiB, that holds this use with a tenth to spare."""
    cap = GIB
    while used > usable(cap) * FULL or files > inodes(cap) * FULL:
        cap += GIB
    return f"{cap // GIB}G"


def resize(current: str, new: str, usage: Usage | None) -> str:
    """What a new cap does to a disk of `current`: "same", "grow", or "shrink" (which needs
    the disk offline). A shrink is refused unless the data fits a disk of the new cap with a
    tenth to spare. `usage` is the disk's, or None when it does not exist yet (then any
    cap is only a record: the disk is made at that size)."""
    have, want = size_bytes(current), size_bytes(new)
    if want == have:
        return "same"
    if want > have or usage is None:
        return "grow"
    room, files = usable(want), inodes(want)
    if usage.used > room * FULL or usage.inodes_used > files * FULL:
        raise BadInput(f"--disk {new}: the disk holds {shown(usage.used)} in "
                       f"{usage.inodes_used} files and folders, more than nine tenths of what "
                       f"a {new} disk holds ({shown(room)} in {files}); give at least "
                       f"{smallest(usage.used, usage.inodes_used)}")
    return "shrink"


def from_statvfs(result) -> Usage:
    """The use of a mounted disk, from os.statvfs of its mount point (as df counts it)."""
    return Usage(size=result.f_blocks * result.f_frsize,
                 used=(result.f_blocks - result.f_bfree) * result.f_frsize,
                 inodes=result.f_files, inodes_used=result.f_files - result.f_ffree)


SUPERBLOCK = 1024  # where the ext4 superblock starts in the image
MAGIC = 0xEF53
INCOMPAT_64BIT = 0x80


def _superblock(data: bytes) -> bytes | None:
    block = data[SUPERBLOCK:SUPERBLOCK + 1024]
    if len(block) < 1024 or struct.unpack_from("<H", block, 0x38)[0] != MAGIC:
        return None
    return block


def _counts(block: bytes) -> tuple[int, int, int]:
    """Block size, block count and free blocks of a superblock."""
    blocks_lo, _, free_lo = struct.unpack_from("<3I", block, 4)
    high = struct.unpack_from("<I", block, 0x60)[0] & INCOMPAT_64BIT
    blocks_hi, free_hi = (struct.unpack_from("<I", block, 0x150)[0],
                          struct.unpack_from("<I", block, 0x158)[0]) if high else (0, 0)
    size = 1024 << struct.unpack_from("<I", block, 0x18)[0]
    return size, blocks_hi << 32 | blocks_lo, free_hi << 32 | free_lo


def fs_bytes(data: bytes) -> int | None:
    """How large the file system in an image is, all of it (overhead included): once it
    has grown, the size of the image."""
    block = _superblock(data)
    if block is None:
        return None
    size, total, _ = _counts(block)
    return size * total


def from_superblock(data: bytes) -> Usage | None:
    """The use of an unmounted disk from the first 2 KiB of its image, as df would count it
    mounted: the overhead mkfs.ext4 records (1.47 and later) left out of size and use. The
    counts are exact once the file system was cleanly unmounted. None for no ext4."""
    block = _superblock(data)
    if block is None:
        return None
    inode_count, free_inodes = struct.unpack_from("<I", block, 0)[0], \
        struct.unpack_from("<I", block, 0x10)[0]
    size, total, free = _counts(block)
    total -= struct.unpack_from("<I", block, 0x248)[0]  # the overhead mkfs.ext4 recorded
    return Usage(size=total * size, used=max(0, total - free) * size, inodes=inode_count,
                 inodes_used=inode_count - free_inodes)
