"""unitgen.files.Root: the files sink, on throwaway roots."""

import json
import os
import stat
from pathlib import Path

import pytest

from tests.helpers import snapshot
from unitgen.errors import Failed
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


@pytest.mark.parametrize("damage", ["edit", "delete", "replace-with-link"])
def test_a_damaged_generated_file_is_restored(root, damage):
    apply(root, FILES)
    before = snapshot(root.path)
    target = root(KEYS)
    if damage == "edit":
        target.write_text("ssh-ed25519 BBBB mallory\n")
    elif damage == "delete":
        target.unlink()
    else:
        target.unlink()
        target.symlink_to("/dev/null")
    assert apply(root, FILES) == [KEYS]
    assert snapshot(root.path) == before


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


def test_locked_on_a_missing_root_fails(tmp_path):
    with (pytest.raises(Failed, match="is not a directory; create it or give another"),
          Root(tmp_path / "missing").locked()):
        pass
    assert list(tmp_path.iterdir()) == []


def test_taking_the_lock_creates_no_file(root):
    with root.locked():
        pass
    with root.locked(shared=True):
        pass
    assert snapshot(root.path) == {}
