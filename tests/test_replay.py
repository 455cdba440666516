"""unitgen.files.Root: a transaction that unitgen did not stage is never carried out."""

import json
import os
from pathlib import Path

import pytest

from tests.helpers import assert_message, snapshot
from unitgen.errors import BadInput
from unitgen.files import Root, digest
from unitgen.model import Artifact
from unitgen.names import ETC, TRANSACTION, UNIT_DIR

UNIT = f"{UNIT_DIR}/wormhole@.service"
KEYS = f"{ETC}/keys/alice/authorized_keys"
FILES = {UNIT: Artifact("[Service]\n"), KEYS: Artifact("ssh-ed25519 AAAA alice\n")}


@pytest.fixture
def box(tmp_path: Path) -> tuple[Root, Path]:
    """A root at BASE/host/root, and BASE/out/victim beside it."""
    (tmp_path / "host" / "root").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "victim").write_text("precious\n")
    return Root(tmp_path / "host" / "root"), tmp_path


def stage(root: Root) -> Path:
    """A transaction as unitgen commits it, replay left for a crash to skip."""
    with root.locked():
        root._stage(FILES, [], {p: digest(a) for p, a in FILES.items()})
    return root(TRANSACTION)


def plan(folder: Path, writes: list[dict] | None = None, deletes: list | None = None) -> None:
    found = json.loads((folder / "plan.json").read_text())
    (folder / "plan.json").write_text(json.dumps({
        "writes": found["writes"] if writes is None else writes,
        "deletes": found["deletes"] if deletes is None else deletes}))


def refused(root: Root, base: Path, *parts: str) -> None:
    """Every command's lock refuses the transaction in one line, and nothing changes."""
    before = snapshot(base)
    for shared in (False, True):
        with pytest.raises(BadInput) as problem, root.locked(shared=shared):
            pass
        assert_message(str(problem.value), "did not stage", "move it out of the way", *parts)
    assert snapshot(base) == before


PLANTED = {
    "a path outside the root": ([{"path": "/../../out/victim", "staged": "0", "link": None}],
                                None, "'/../../out/victim' is not a path of unitgen's"),
    "a path of the host's": ([{"path": "/etc/fstab", "staged": "0", "link": None}], None,
                             "not a path of unitgen's"),
    "a staged name that climbs": ([{"path": KEYS, "staged": "../../../../out/victim",
                                    "link": None}], None, "is not a file it staged"),
    "an absolute staged name": ([{"path": KEYS, "staged": "/etc/passwd", "link": None}], None,
                                "is not a file it staged"),
    "the plan as staged file": ([{"path": KEYS, "staged": "plan.json", "link": None}], None,
                                "is not a file it staged"),
    "a link to a path not unitgen's": ([{"path": f"{UNIT_DIR}/wormhole.target.wants/x.service",
                                         "staged": None, "link": "/etc/shadow"}], None,
                                       "not a path of unitgen's"),
    "a delete outside the root": (None, ["/../../out/victim"], "deletes paths"),
    "a delete of a NUL path": (None, [f"{ETC}/a\0b"], "deletes paths"),
    "a path that is no string": ([{"path": 1, "staged": "0", "link": None}], None,
                                 "not a path of unitgen's"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_transaction_is_refused_and_nothing_changes(box, case):
    root, base = box
    writes, deletes, message = PLANTED[case]
    plan(stage(root), writes, deletes)
    refused(root, base, message)


@pytest.mark.parametrize(("content", "part"), [
    (b"{", "plan.json is damaged"), (b"[]", "plan.json is damaged"),
    (b"null", "plan.json is damaged"), (b'{"writes": 1, "deletes": []}', "plan.json is damaged"),
    (b'{"writes": [{"path": "/etc/wormhole/x"}], "deletes": []}', "plan.json is damaged"),
    (b'{"writes": [], "deletes": "/etc/fstab"}', "deletes paths"),
    (b"\xff", "plan.json is damaged")])
def test_a_damaged_plan_is_refused(box, content, part):
    root, base = box
    (stage(root) / "plan.json").write_bytes(content)
    refused(root, base, part)


def test_a_plan_that_is_a_fifo_is_refused_without_waiting(box):
    root, _ = box
    folder = stage(root)
    (folder / "plan.json").unlink()
    os.mkfifo(folder / "plan.json")
    with pytest.raises(BadInput) as problem, root.locked():
        pass
    assert_message(str(problem.value), "did not stage (plan.json is not a plain file)")
    assert (folder / "plan.json").is_fifo() and root(KEYS).parent.exists() is False


def test_a_staged_file_that_is_a_link_is_refused(box):
    root, base = box
    folder = stage(root)
    (folder / "0").unlink()
    (folder / "0").symlink_to(base / "out" / "victim")
    refused(root, base, "'0' is not a file it staged")


def test_a_link_on_the_way_to_a_target_is_refused_before_anything_is_written(box):
    root, base = box
    folder = stage(root)
    root(f"{ETC}/keys").mkdir(parents=True)
    root(f"{ETC}/keys/alice").symlink_to(base / "out")
    before = snapshot(base)
    with pytest.raises(BadInput, match="is a symbolic link"), root.locked():
        pass
    assert snapshot(base) == before and folder.is_dir()


def test_a_transaction_that_is_a_link_is_refused(box):
    root, base = box
    (base / "out" / "t").mkdir()
    root(ETC).mkdir(parents=True)
    root(TRANSACTION).symlink_to(base / "out" / "t")
    before = snapshot(base)
    with pytest.raises(BadInput, match="is a symbolic link"), root.locked():
        pass
    assert snapshot(base) == before


def test_a_staging_folder_that_is_a_link_is_removed_not_followed(box):
    root, base = box
    root(ETC).mkdir(parents=True)
    root(f"{TRANSACTION}.new").symlink_to(base / "out")
    with root.locked():
        root.apply(FILES)
    assert (base / "out" / "victim").read_text() == "precious\n"
    assert root(KEYS).read_text() == FILES[KEYS].text
