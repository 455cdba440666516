"""The pure side of disk caps: sizes, names, what fits on a disk, what a new cap means, and
how full a disk is."""

import shutil
import subprocess
import tarfile
from types import SimpleNamespace

import pytest

from unitgen import disk, names, validate
from unitgen.errors import BadInput
from unitgen.model import Host, Person, size_bytes

# df --block-size=1 --output=avail,itotal of fresh disks made as units/libexec/disk makes
# them (mkfs.ext4 -b 4096 -i 16384 -m 0 -J size=16 ..., e2fsprogs 1.47.0), loop-mounted on
# this machine.
MEASURED_AVAIL = {
    "256M": 241786880,
    "512M": 500113408,
    "1G": 1020678144,
    "2G": 2073903104,
    "10G": 10497552384,
    "20G": 21058084864,
    "100G": 105592553472,
    "1T": 1082141339648,
}
MEASURED_INODES = {"256M": 16384, "512M": 32768, "1G": 65536, "10G": 655360,
                   "1T": 67108864}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSp0mXtwfPHZKNtIOTANlljzl/IAV6tK4UFcNPiNpM0 a@b"


@pytest.mark.parametrize("cap", MEASURED_AVAIL)
def test_usable_never_promises_more_than_a_fresh_disk_holds(cap):
    room = disk.usable(size_bytes(cap))
    assert room <= MEASURED_AVAIL[cap]
    if size_bytes(cap) >= 1 << 30:
        assert room >= MEASURED_AVAIL[cap] * 0.94


@pytest.mark.parametrize("cap", MEASURED_INODES)
def test_inodes_are_those_of_a_fresh_disk_less_ext4s_own(cap):
    assert disk.inodes(size_bytes(cap)) == MEASURED_INODES[cap] - 11


@pytest.mark.parametrize(("given", "canonical"), [
    ("10G", "10G"), ("10g", "10G"), ("256M", "256M"), ("1024M", "1G"), ("8T", "8T"),
    (" 20G ", "20G"), ("2097152K", "2G"),
])
def test_disk_sizes_are_read_like_memory_sizes(given, canonical):
    assert validate.disk(given) == canonical


@pytest.mark.parametrize(("given", "message"), [
    ("255M", "--disk: '255M' is outside 256M to 8T; give a size in that range"),
    ("9T", "--disk: '9T' is outside 256M to 8T; give a size in that range"),
    ("10GB", "--disk: '10GB' is not a size; give a number with K, M, G or T (e.g. 10G)"),
])
def test_bad_disk_sizes_are_refused_with_the_range(given, message):
    with pytest.raises(BadInput) as refused:
        validate.disk(given)
    assert str(refused.value) == message


def test_memory_keeps_its_own_range():
    with pytest.raises(BadInput, match="'63M' is outside 64M to 1T"):
        validate.memory("63M")
    assert validate.memory("2048M") == "2G"


def test_a_person_without_a_disk_gets_the_default_and_each_disk_its_own_paths():
    host = Host(people=(Person("ann", 2200, ()),
                        Person("bo", 2201, (), disk="20G", generation=2),
                        Person("cy", 2202, (), on_volumes=True)))
    ann, bo, cy = host.workspaces()
    assert (ann.disk, ann.disk_image, ann.disk_mount, ann.sources) == (
        "10G", "/var/lib/wormhole/disks/ann.img", "/var/lib/wormhole/disks/ann",
        ("/var/lib/wormhole/disks/ann/home", "/var/lib/wormhole/disks/ann/hostkeys"))
    assert (bo.disk, bo.disk_image, bo.disk_mount) == (
        "20G", "/var/lib/wormhole/disks/bo.2.img", "/var/lib/wormhole/disks/bo")
    assert cy.sources == ("wormhole-home-cy", "wormhole-hostkeys-cy")


def test_the_config_and_a_person_record_carry_the_disk():
    assert validate.settings({"disk": "20g"}, "wormhole.toml").disk == "20G"
    with pytest.raises(BadInput, match=r"wormhole\.toml: disk: '1M' is outside 256M"):
        validate.settings({"disk": "1M"}, "wormhole.toml")
    person = validate.person("ann", {"port": 2200, "keys": [KEY], "disk": "5G",
                                     "on_volumes": True}, "ann.toml")
    assert (person.disk, person.on_volumes) == ("5G", True)


def test_disk_images_read_back_as_their_generation_and_nobody_elses():
    for generation in (0, 1, 17):
        image = names.disk_image("al", generation)
        assert names.disk_generation_of("al", image) == generation
        assert names.disk_generation_of("a", image) is None
    for other in ("/var/lib/wormhole/disks/al.x.img", "/var/lib/wormhole/disks/al",
                  "/var/lib/wormhole/disks/al.img.part", "/var/lib/wormhole/disks/alan.img"):
        assert names.disk_generation_of("al", other) is None
    entries = ["al", "al.img", "al.3.img", "al.img.part", "al.new", "alan.img", "al-b.img",
               "bo.img"]
    assert names.disk_leftovers("al", entries) == [
        f"{names.DISKS}/{e}" for e in ("al", "al.3.img", "al.img", "al.img.part", "al.new")]


def member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0,
           link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def test_need_counts_whole_blocks_folders_long_symlinks_and_not_hard_links():
    members = [
        member("home", tarfile.DIRTYPE),
        member("home/a", size=1),
        member("home/b", size=4096),
        member("home/c", size=4097),
        member("home/empty"),
        member("home/short", tarfile.SYMTYPE, link="a"),
        member("home/long", tarfile.SYMTYPE, link="x" * 60),
        member("home/again", tarfile.LNKTYPE, link="home/c"),
    ]
    assert disk.need(members) == disk.Need(4096 + 4096 + 4096 + 8192 + 0 + 0 + 4096, 7)


def test_an_archive_larger_than_the_cap_is_refused_and_a_smaller_one_is_not():
    need = disk.need([member("home/big", size=300 << 20),
                      member("hostkeys/ssh_host_ed25519_key", size=400)])
    with pytest.raises(BadInput) as refused:
        disk.check_fits(need, "256M", "a.tar.gz", "give a larger --disk")
    assert str(refused.value) == ("a.tar.gz takes 300M, more than a 256M disk holds "
                                  "(220M); give a larger --disk")
    disk.check_fits(need, "1G", "a.tar.gz", "give a larger --disk")


def test_too_many_files_are_refused_even_when_the_bytes_fit():
    with pytest.raises(BadInput, match=r"holds 70000 files and folders, more than a 1G disk "
                                       r"holds \(65525\)"):
        disk.check_fits(disk.Need(1 << 20, 70000), "1G", "a.tar.gz", "fix")


def usage(used: int, inodes_used: int = 10, size: int = 10 << 30) -> disk.Usage:
    return disk.Usage(size=size, used=used, inodes=655360, inodes_used=inodes_used)


@pytest.mark.parametrize(("current", "new", "used", "step"), [
    ("10G", "10G", 5 << 30, "same"),
    ("10G", "20G", 9 << 30, "grow"),
    ("10G", "5G", 1 << 30, "shrink"),
    ("10G", "2G", 0, "shrink"),
])
def test_a_new_cap_grows_shrinks_or_changes_nothing(current, new, used, step):
    assert disk.resize(current, new, usage(used)) == step


def test_a_disk_not_made_yet_just_takes_the_new_cap():
    assert disk.resize("10G", "1G", None) == "grow"


def test_shrinking_below_the_data_and_a_tenth_is_refused_with_the_smallest_cap():
    with pytest.raises(BadInput) as refused:
        disk.resize("10G", "4G", usage(int(3.8 * (1 << 30))))
    assert str(refused.value) == ("--disk 4G: the disk holds 3.8G in 10 files and folders, "
                                  "more than nine tenths of what a 4G disk holds (3.8G in "
                                  "262133); give at least 5G")
    with pytest.raises(BadInput, match=r"give at least 2G$"):
        disk.resize("10G", "1G", usage(1 << 20, inodes_used=65000))


def test_a_disk_is_as_full_as_its_bytes_or_its_files():
    assert usage(5 << 30).ratio == 0.5
    assert usage(0, inodes_used=655360 // 4 * 3).ratio == 0.75


def test_use_of_a_mounted_disk_comes_from_statvfs():
    result = SimpleNamespace(f_blocks=510426, f_bfree=510411, f_frsize=4096, f_files=131072,
                             f_ffree=131061)
    assert disk.from_statvfs(result) == disk.Usage(2090704896, 61440, 131072, 11)


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs e2fsprogs")
def test_use_of_an_unmounted_disk_comes_from_its_superblock_as_df_counts_it(tmp_path):
    image = tmp_path / "a.img"
    subprocess.run(["truncate", "--size", "10G", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-i", "16384", "-m", "0", "-J", "size=16",
                    "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", image], check=True)
    with image.open("rb") as opened:  # the first 2 KiB: the image is 10G, mostly holes
        head = opened.read(2048)
    found = disk.from_superblock(head)
    # df of the same image freshly mounted: 10514354176 bytes, 24576 used, 655360 inodes.
    assert found == disk.Usage(10514354176, 24576, 655360, 11)
    assert disk.fs_bytes(head) == 10 << 30
    assert disk.from_superblock(bytes(2048)) is None and disk.fs_bytes(bytes(2048)) is None


def test_sizes_are_shown_short():
    assert [disk.shown(n) for n in (512, 24576, 1 << 30, 3 * (1 << 29), 10 << 40)] == [
        "512B", "24K", "1G", "1.5G", "10T"]
