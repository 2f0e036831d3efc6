#!/usr/bin/env python3
"""Write the initramfs of chronicorn's minimal Linux guest as an uncompressed
"newc" cpio archive, without needing root (no mknod) and byte-identical at
every build (fixed inode numbers, uid/gid 0, mtime 0).

    mkcpio.py INIT_ELF OUTPUT.cpio

Contents:
    /dev            directory, 0755
    /dev/console    character device 5,1, 0600  (the kernel opens it for init)
    /init           regular file, 0755          (INIT_ELF)
"""

import stat
import sys

MAGIC = b"070701"  # newc, no checksum


def _pad4(n):
    return (4 - n % 4) % 4


def entry(ino, name, mode, data=b"", nlink=1, rdev=(0, 0)):
    """One newc record: 110-byte header, NUL-terminated name, data, each padded to 4."""
    namez = name.encode() + b"\0"
    fields = (
        ino,  # c_ino
        mode,  # c_mode
        0,  # c_uid
        0,  # c_gid
        nlink,  # c_nlink
        0,  # c_mtime
        len(data),  # c_filesize
        0,  # c_devmajor
        0,  # c_devminor
        rdev[0],  # c_rdevmajor
        rdev[1],  # c_rdevminor
        len(namez),  # c_namesize
        0,  # c_check
    )
    hdr = MAGIC + b"".join(b"%08X" % f for f in fields)
    assert len(hdr) == 110
    out = hdr + namez + b"\0" * _pad4(len(hdr) + len(namez))
    out += data + b"\0" * _pad4(len(data))
    return out


def build(init_data):
    archive = b"".join(
        (
            entry(1, "dev", stat.S_IFDIR | 0o755, nlink=2),
            entry(2, "dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
            entry(3, "init", stat.S_IFREG | 0o755, init_data),
            entry(0, "TRAILER!!!", 0, nlink=1),
        )
    )
    # Pad to a multiple of 512 bytes like cpio(1) does; the kernel skips the zeros.
    return archive + b"\0" * ((512 - len(archive) % 512) % 512)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        init_data = f.read()
    with open(argv[2], "wb") as f:
        f.write(build(init_data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
