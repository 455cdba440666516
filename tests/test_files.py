"""unitgen.files.Root: the files sink, on throwaway roots."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.helpers import assert_message, snapshot
from unitgen.errors import BadInput
from unitgen.files import Root, digest
from unitgen.model import Artifact
from unitgen.names import CONFIG, ETC, MANIFEST, TRANSACTION, UNIT_DIR

UNIT = f"{UNIT_DIR}/wormhole@.service"
LINK = f"{UNIT_DIR}/wormhole.target.wants/wormhole@alice.service"
KEYS = f"{ETC}/keys/alice/authorized_keys"
ENV = f"{ETC}/env/alice.env"
FILES = {
    UNIT: Artifact("[Service]\n"),
    LINK: Artifact(link=UNIT),
    KEYS: Artifact("ssh-ed25519 AAAA alice\n", mode=0o600),
    ENV: Artifact("WORMHOLE_MEMORY=512M\n", mode=0o640),
    f"{ETC}/bin/tool": Artifact("#!/bin/sh\n", mode=0o755),
}


@pytest.fixture
def root(tmp_path: Path) -> Root:
    return Root(tmp_path)


def apply(root: Root, files: dict[str, Artifact]) -> list[str]:
    with root.locked():
        return root.apply(files)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_apply_writes_files_with_their_modes_and_symlinks_with_their_targets(root):
    assert apply(root, FILES) == sorted(FILES)
    for path, artifact in FILES.items():
        if artifact.link is None:
            assert (root(path).read_text(), mode(root(path))) == (artifact.text, artifact.mode)
    assert root(LINK).is_symlink() and os.readlink(root(LINK)) == UNIT


def test_apply_records_what_it_owns_in_the_manifest(root):
    apply(root, FILES)
    assert json.loads(root(MANIFEST).read_text()) == {p: digest(a) for p, a in FILES.items()}
    assert not root(TRANSACTION).exists()


def test_a_second_apply_of_the_same_files_changes_nothing(root):
    apply(root, FILES)
    before = snapshot(root.path)
    assert apply(root, FILES) == []
    assert snapshot(root.path) == before


def test_a_removal_deletes_what_the_manifest_owned_and_prunes_empty_folders(root):
    apply(root, FILES)
    assert apply(root, {UNIT: FILES[UNIT]}) == sorted(set(FILES) - {UNIT})
    assert sorted(snapshot(root.path)) == [
        "etc", "etc/systemd", "etc/systemd/system", "etc/systemd/system/wormhole@.service",
        "etc/wormhole", "etc/wormhole/generated.json",
    ]


def test_a_removal_keeps_both_top_folders_even_when_empty(root):
    apply(root, FILES)
    apply(root, {})
    assert root(UNIT_DIR).is_dir() and not any(root(UNIT_DIR).iterdir())
    assert sorted(p.name for p in root(ETC).iterdir()) == ["generated.json"]
    root(MANIFEST).unlink()
    root._prune(root(ETC))
    root._prune(root(UNIT_DIR))
    assert root(ETC).is_dir() and root(UNIT_DIR).is_dir()


def test_a_removal_leaves_folders_that_hold_other_files(root):
    apply(root, FILES)
    root(f"{ETC}/keys/alice/notes").write_text("mine\n")
    apply(root, {})
    assert root(f"{ETC}/keys/alice/notes").read_text() == "mine\n"
    assert not root(KEYS).exists()


def test_files_the_manifest_never_owned_are_not_deleted(root):
    root(f"{UNIT_DIR}/other.service").parent.mkdir(parents=True)
    root(f"{UNIT_DIR}/other.service").write_text("[Unit]\n")
    apply(root, FILES)
    apply(root, {})
    assert root(f"{UNIT_DIR}/other.service").read_text() == "[Unit]\n"


def test_keep_files_are_written_only_when_missing(root):
    apply(root, {CONFIG: Artifact("memory = '1G'\n", keep=True)})
    assert root(CONFIG).read_text() == "memory = '1G'\n"
    root(CONFIG).write_text("# the admin's own\n")
    before = snapshot(root.path)
    assert apply(root, {CONFIG: Artifact("memory = '2G'\n", keep=True)}) == []
    assert snapshot(root.path) == before
    root(CONFIG).unlink()
    assert apply(root, {CONFIG: Artifact("memory = '2G'\n", keep=True)}) == [CONFIG]
    assert root(CONFIG).read_text() == "memory = '2G'\n"


def test_keep_files_are_never_deleted(root):
    apply(root, {CONFIG: Artifact("x = 1\n", keep=True), **FILES})
    apply(root, {})
    assert root(CONFIG).read_text() == "x = 1\n"
    assert CONFIG not in json.loads(root(MANIFEST).read_text())


@pytest.mark.parametrize("damage", ["edit", "delete"])
def test_a_damaged_generated_file_is_restored(root, damage):
    apply(root, FILES)
    before = snapshot(root.path)
    target = root(KEYS)
    if damage == "edit":
        target.write_text("ssh-ed25519 BBBB mallory\n")
    else:
        target.unlink()
    assert apply(root, FILES) == [KEYS]
    assert snapshot(root.path) == before


# ---- confined to unitgen's own paths -------------------------------------------------------

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the root, with a file a link under the root points into."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious").write_text("keep me\n")
    return folder


def refused(root: Root, files: dict, *parts: str) -> None:
    with pytest.raises(BadInput) as refusal:
        apply(root, files)
    assert_message(str(refusal.value), *parts)


@pytest.mark.parametrize("linked", [f"{ETC}/keys/alice", f"{ETC}/keys", UNIT_DIR])
def test_a_link_where_a_folder_belongs_is_refused_and_nothing_outside_changes(
        tmp_path, outside, linked):
    root = Root(tmp_path / "root")
    root.path.mkdir()
    apply(root, FILES)
    shutil.rmtree(root(linked))
    root(linked).symlink_to(outside)
    inside, beyond = snapshot(root.path), snapshot(outside)
    refused(root, {**FILES, ENV: Artifact("WORMHOLE_MEMORY=1G\n")}, f"{linked} is a symbolic "
            "link", "never follows links")
    refused(root, {}, f"{linked} is a symbolic link")
    assert (snapshot(root.path), snapshot(outside)) == (inside, beyond)


def test_a_link_where_a_file_belongs_is_refused(root, outside):
    apply(root, FILES)
    root(KEYS).unlink()
    root(KEYS).symlink_to(outside / "precious")
    before = snapshot(root.path)
    refused(root, FILES, f"{KEYS} is a symbolic link", "put a real file there")
    assert snapshot(root.path) == before
    assert (outside / "precious").read_text() == "keep me\n"


def test_a_link_to_a_file_where_a_folder_belongs_leaves_no_half_change(root, outside):
    apply(root, FILES)
    shutil.rmtree(root(f"{ETC}/keys/alice"))
    root(f"{ETC}/keys/alice").symlink_to(outside / "precious")
    refused(root, {**FILES, KEYS: Artifact("ssh-ed25519 CCCC alice\n")}, "symbolic link")
    assert not root(TRANSACTION).exists()
    with root.locked(shared=True):
        assert root.read(ENV) == "WORMHOLE_MEMORY=512M\n"


@pytest.mark.parametrize("entry", ["/../../tmp/x", "/etc/fstab", "etc/wormhole/x",
                                   f"{UNIT_DIR}/docker.service"])
def test_manifest_entries_outside_unitgens_paths_are_never_deleted(tmp_path, entry):
    root = Root(tmp_path / "root")
    root.path.mkdir()
    apply(root, FILES)
    victim = Path(os.path.normpath(root.path / entry.lstrip("/")))
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("not unitgen's\n")
    manifest = json.loads(root(MANIFEST).read_text())
    root(MANIFEST).write_text(json.dumps({**manifest, entry: "sha256:0:644"}))
    assert root.foreign() == [entry]
    apply(root, {UNIT: FILES[UNIT]})
    assert victim.read_text() == "not unitgen's\n"
    assert not root(KEYS).exists()
    assert root.foreign() == []


@pytest.mark.parametrize("damage", ["[1, 2]", "{not json", '{"a": 1}', "\udcff"])
def test_a_damaged_manifest_is_one_line_and_changes_nothing(root, damage):
    apply(root, FILES)
    root(MANIFEST).write_bytes(damage.encode("utf-8", "surrogateescape"))
    before = snapshot(root.path)
    refused(root, FILES, MANIFEST, "remove it")
    assert snapshot(root.path) == before


def test_the_registry_decides_what_goes_without_a_manifest(root):
    apply(root, FILES)
    root(MANIFEST).unlink()
    with root.locked():
        root.apply({UNIT: FILES[UNIT]}, previous=FILES)
    assert not root(KEYS).exists() and not root(ENV).exists() and not root(LINK).is_symlink()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(parents=True), "is not a plain file"),
    (lambda p: (p.parent.mkdir(parents=True), p.write_bytes(b"\xff\xfe")), "not UTF-8"),
    (lambda p: (p.parent.mkdir(parents=True), os.mkfifo(p)), "is not a plain file"),
])
def test_a_registry_file_that_is_no_text_file_is_one_line(root, make, message):
    make(root(f"{ETC}/people/ann.toml"))
    with pytest.raises(BadInput) as refusal, root.locked(shared=True):
        root.people()
    assert_message(str(refusal.value), "/etc/wormhole/people/ann.toml", message)


def test_a_relinked_symlink_is_restored(root):
    apply(root, FILES)
    root(LINK).unlink()
    root(LINK).symlink_to("/elsewhere")
    assert apply(root, FILES) == [LINK]
    assert os.readlink(root(LINK)) == UNIT


def test_a_chmoded_generated_file_gets_its_mode_back(root):
    apply(root, FILES)
    os.chmod(root(KEYS), 0o666)
    assert apply(root, FILES) == [KEYS]
    assert mode(root(KEYS)) == 0o600


# ---- crash recovery ---------------------------------------------------------------------

def stage(root: Root, files: dict[str, Artifact], deletes: list[str] = ()) -> None:
    """What apply() does up to the commit, with the replay left for a crash to skip."""
    with root.locked():
        owned = {p: digest(a) for p, a in files.items() if not a.keep}
        root._stage(files, list(deletes), owned)


def test_a_committed_transaction_is_completed_by_the_next_lock(root):
    stage(root, FILES)
    assert root(TRANSACTION).is_dir() and not root(KEYS).exists()
    with Root(root.path).locked():
        pass
    assert not root(TRANSACTION).exists()
    fresh = Root(root.path / "fresh")
    fresh.path.mkdir()
    apply(fresh, FILES)
    assert snapshot(root.path / "etc") == snapshot(fresh.path / "etc")


def test_a_committed_removal_is_completed_by_the_next_lock(root):
    apply(root, FILES)
    stage(root, {UNIT: FILES[UNIT]}, deletes=[KEYS, LINK])
    with Root(root.path).locked():
        pass
    assert not root(KEYS).exists() and not root(f"{ETC}/keys").exists()
    assert not os.path.lexists(root(LINK)) and not root(LINK).parent.exists()
    assert not root(TRANSACTION).exists()


def test_a_replay_cut_short_is_completed(root):
    stage(root, FILES)
    plan = json.loads((root(TRANSACTION) / "plan.json").read_text())
    first = next(e for e in plan["writes"] if e["staged"] is not None)
    root(first["path"]).parent.mkdir(parents=True, exist_ok=True)
    os.replace(root(TRANSACTION) / first["staged"], root(first["path"]))
    with Root(root.path).locked():
        pass
    assert not root(TRANSACTION).exists()
    assert apply(root, FILES) == []


def test_a_reader_finishes_an_interrupted_change_first(root):
    stage(root, FILES)
    with Root(root.path).locked(shared=True):
        assert not root(TRANSACTION).exists()
        assert root(UNIT).read_text() == FILES[UNIT].text


def test_an_uncommitted_transaction_is_discarded_and_nothing_changes(root):
    apply(root, {UNIT: FILES[UNIT]})
    stage(root, FILES, deletes=[UNIT])
    staging = root(TRANSACTION).with_name(".transaction.new")
    os.replace(root(TRANSACTION), staging)
    before = {k: v for k, v in snapshot(root.path).items() if ".transaction.new" not in k}
    with Root(root.path).locked():
        pass
    assert snapshot(root.path) == before


def test_locked_on_a_missing_root_is_bad_input(tmp_path):
    with (pytest.raises(BadInput, match="is not a directory; create it or give another"),
          Root(tmp_path / "missing").locked()):
        pass
    assert list(tmp_path.iterdir()) == []


def test_taking_the_lock_creates_no_file(root):
    with root.locked():
        pass
    with root.locked(shared=True):
        pass
    assert snapshot(root.path) == {}
