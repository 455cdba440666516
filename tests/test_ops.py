"""unitgen.ops and its plans with a fake edge: admission, upgrade batches and their rollback,
restore generations, switches; the files under a throwaway root are real."""

import hashlib
import io
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_edge import FakeEdge
from tests.helpers import assert_message, snapshot
from unitgen import admission, disk, names, ops, plan, restic
from unitgen import edge as edge_module
from unitgen.admission import Wanted
from unitgen.disk import Usage
from unitgen.errors import BadInput, Failed
from unitgen.files import Root
from unitgen.keys import parse_key
from unitgen.model import Host, Person, Settings

KEY = parse_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSp0mXtwfPHZKNtIOTANlljzl/IAV6tK4UFcNPiNpM0 "
                "t@x")
RULES = "/etc/wormhole/firewall/rules.v4"


def person(name: str, port: int = 0, **values: object) -> Person:
    return Person(name, port, (KEY,), **values)


def wanted(*people: Person, where: str = "") -> list[Wanted]:
    return [Wanted(p, where) for p in people]


@pytest.fixture
def root(tmp_path: Path) -> Root:
    return Root(tmp_path)


def crew(root: Root, edge: FakeEdge, *people: str, firewall: bool = False) -> Host:
    """People added as `unitgen add` adds them, each running the image it names."""
    ops.add(root, edge, wanted(*map(person, people)), start=False)
    if firewall:
        ops.firewall(root, edge, True)
    edge.running = {names.container(n): "sha256:old" for n in people}
    return ops.load(root)


# ---- admission ---------------------------------------------------------------------------

def test_admission_gives_the_lowest_free_ports_in_name_order_after_the_fixed_ones():
    host = admission.admit(Host(), wanted(person("cy"), person("al"), person("bo", 2201)))
    assert [(p.name, p.port) for p in host.people] == [("al", 2200), ("bo", 2201), ("cy", 2202)]


def test_admission_does_not_depend_on_the_order_of_the_input():
    people = [person("cy"), person("al", 2203), person("bo")]
    assert admission.admit(Host(), wanted(*people)) == \
        admission.admit(Host(), wanted(*reversed(people)))


def test_admission_skips_busy_ports_and_refuses_a_busy_one():
    host = admission.admit(Host(), wanted(person("al")), frozenset({2200, 2201}))
    assert host.need("al").port == 2202
    with pytest.raises(BadInput) as refused:
        admission.admit(Host(), wanted(person("al", 2300)), frozenset({2300}))
    assert_message(str(refused.value), "--port: port 2300 is in use on this host",
                   "pick another")


def test_a_person_given_again_as_registered_changes_nothing():
    host = admission.admit(Host(), wanted(person("al", memory="1G")))
    assert admission.admit(host, wanted(person("al", memory="1G"))) == host
    assert admission.admit(host, wanted(person("al", host.need("al").port, memory="1G"))) == host


CONFLICTS = [
    pytest.param(person("al", memory="2G"), "",
                 "al exists already (port 2200), with other values; choose another name or "
                 "run: unitgen remove al", id="exists-other-values"),
    pytest.param(person("al", 2201), "", "al exists already (port 2200)", id="exists-other-port"),
    pytest.param(person("bo", 2200), "", "--port: port 2200 is taken by al; pick another",
                 id="port-taken"),
    pytest.param(person("bo", 2200), "people.toml:4: [people.bo]",
                 "people.toml:4: [people.bo]: port 2200 is taken by al", id="port-taken-in-file"),
    pytest.param(person("bo", 3000), "", "--port: port 3000 is outside the range 2200-2999",
                 id="port-outside"),
]


@pytest.mark.parametrize(("new", "where", "message"), CONFLICTS)
def test_admission_conflicts_are_one_line_and_name_the_fix(new, where, message):
    host = admission.admit(Host(), wanted(person("al", memory="1G")))
    with pytest.raises(BadInput) as refused:
        admission.admit(host, wanted(new, where=where))
    assert_message(str(refused.value), message)


def test_no_free_port_left_is_refused():
    host = Host(Settings(port_min=2200, port_max=2201))
    host = admission.admit(host, wanted(person("al"), person("bo")))
    with pytest.raises(BadInput) as refused:
        admission.admit(host, wanted(person("cy")))
    assert_message(str(refused.value), "no free port left in 2200-2201", "widen port_min")


# ---- upgrade -----------------------------------------------------------------------------

def test_upgrade_with_batch_keeps_the_firewall_on(root):
    edge = FakeEdge()
    crew(root, edge, "al", "bo", "cy", firewall=True)
    assert root(RULES).is_file()
    ops.upgrade(root, edge, [], True, None, 2, lambda _: None)
    assert root(RULES).is_file()
    assert ops.load(root).firewall
    assert ("stop", names.FIREWALL_UNIT) not in edge.calls


def test_upgrade_runs_in_batches_and_moves_everyone_to_the_new_image(root):
    edge = FakeEdge({"wormhole:latest": "sha256:old", "wormhole:2": "sha256:new"})
    crew(root, edge, "al", "bo", "cy")
    said = []
    ops.upgrade(root, edge, [], True, "wormhole:2", 2, said.append)
    assert said == ["upgrading 3 running workspace(s) of 3 chosen, 2 at a time",
                    "batch 1: al, bo upgraded", "batch 2: cy upgraded"]
    assert {p.image for p in ops.load(root).people} == {"wormhole:2"}
    assert edge.restarted() == [names.unit(n) for n in ("al", "bo", "cy")]


def test_a_failing_batch_goes_back_and_later_batches_are_not_touched(root):
    edge = FakeEdge({"wormhole:latest": "sha256:old", "wormhole:2": "sha256:new"})
    host = crew(root, edge, "al", "bo", "cy", "dee", "eve")
    edge.broken = {host.need("cy").port}
    with pytest.raises(Failed) as failed:
        ops.upgrade(root, edge, [], True, "wormhole:2", 2, lambda _: None)
    assert_message(str(failed.value), "batch 2: cy did not answer after the upgrade",
                   "the batch went back to its previous image", "but cy still does not answer",
                   "later batches were not touched")
    images = {p.name: p.image for p in ops.load(root).people}
    assert images == {"al": "wormhole:2", "bo": "wormhole:2", "cy": None, "dee": None,
                      "eve": None}
    assert edge.restarted() == [names.unit(n) for n in ("al", "bo", "cy", "dee", "cy", "dee")]


def test_a_rollback_pins_the_image_id_when_the_tag_has_moved_since(root):
    edge = FakeEdge({"wormhole:latest": "sha256:rebuilt"})
    host = crew(root, edge, "al")
    edge.broken = {host.need("al").port}
    with pytest.raises(Failed):
        ops.upgrade(root, edge, ["al"], False, None, None, lambda _: None)
    assert ops.load(root).need("al").image == "sha256:old"


def test_upgrade_plan_pins_only_those_whose_reference_moved():
    host = admission.admit(Host(Settings(upgrade_batch=1)),
                           wanted(person("al"), person("bo")))
    batches = plan.upgrade(host, list(host.people), "wormhole:2", {"bo": "sha256:old"})
    assert [b.number for b in batches] == [1, 2]
    assert batches[1].rollback.need("bo").image == "sha256:old"
    assert batches[1].rollback.need("al").image == "wormhole:2"  # batch 1 stayed upgraded
    assert batches[0].rollback.need("al").image is None


def test_upgrade_recreates_those_whose_files_changed_or_everyone_for_a_new_template():
    host = admission.admit(Host(), wanted(person("al"), person("bo"), person("cy")))
    assert [p.name for p in plan.recreate(host, [host.need("cy")],
                                          [names.env_file("al")])] == ["al", "cy"]
    assert len(plan.recreate(host, [], [names.TEMPLATE])) == 3
    assert plan.recreate(host, [], [names.keys_file("al")]) == []


# ---- restore -----------------------------------------------------------------------------

def test_restore_generations_count_up_past_every_volume_and_disk_and_drop_stale_ones():
    host = admission.admit(Host(), wanted(person("al")))
    volumes = ["wormhole-home-al", "wormhole-hostkeys-al", "wormhole-home-al.3",
               "wormhole-home-alan", "wormhole-home-al.x"]
    images = [names.disk_image("al", 0), names.disk_image("al", 5),
              names.disk_image("alan", 9), f"{names.DISKS}/al.x.img"]
    step = plan.restore(host, host.need("al"), volumes, images)
    assert step.person.generation == 6
    assert step.disk.disk_image == "/var/lib/wormhole/disks/al.6.img"
    assert step.stale_volumes == ["wormhole-home-al.3", "wormhole-home-alan",
                                  "wormhole-home-al.x"]
    assert step.stale_disks == [names.disk_image("al", 5), names.disk_image("alan", 9),
                                f"{names.DISKS}/al.x.img"]
    assert plan.next_generation("al", ["wormhole-home-alan", "wormhole-home-al.x"]) == 0


def from_archive(edge: FakeEdge) -> ops.Fill:
    return lambda w, aside: edge.extract_onto_disk(w.image, None, w.name, aside)


def restored(root: Root, edge: FakeEdge) -> Host:
    """al added, their disk made and running."""
    host = crew(root, edge, "al")
    edge.disks[names.disk_image("al", 0)] = Usage(10 << 30, 1 << 20, 1 << 16, 100)
    edge.active_units = {names.unit("al")}
    return host


def test_a_restore_that_answers_moves_the_person_onto_a_new_disk_and_deletes_the_old(
        root, tmp_path):
    edge = FakeEdge()
    host = restored(root, edge)
    ops._restore(root, edge, host, host.need("al"), from_archive(edge), "x", lambda _: None)
    assert ops.load(root).need("al").generation == 1
    assert set(edge.disks) == {names.disk_image("al", 1)}
    assert ("extract", "al", names.disk_image("al", 1)) in edge.calls
    assert edge.mounted == {}
    # one restart of the data unit first, which systemd finishes even if unitgen is killed
    assert ("restart", names.data_unit("al"), names.unit("al")) in edge.calls
    assert ("stop", names.hold_socket("al"), names.unit("al"), names.data_unit("al")) \
        not in edge.calls


def test_a_restore_that_does_not_answer_goes_back_to_the_old_disk(root, tmp_path):
    edge = FakeEdge()
    host = restored(root, edge)
    edge.broken = {host.need("al").port}
    before = root("/etc/wormhole/env/al.env").read_text()
    with pytest.raises(Failed) as failed:
        ops._restore(root, edge, host, host.need("al"), from_archive(edge), "x",
                     lambda _: None)
    assert_message(str(failed.value), "al did not answer on the restored data",
                   "went back to its previous data")
    assert ops.load(root) == host
    assert root("/etc/wormhole/env/al.env").read_text() == before
    assert set(edge.disks) == {names.disk_image("al", 0)}


def test_a_failed_extraction_deletes_the_new_disk_and_changes_nothing(root, tmp_path):
    edge = FakeEdge(failing={"extract"})
    host = restored(root, edge)
    with pytest.raises(Failed, match="extract failed"):
        ops._restore(root, edge, host, host.need("al"), from_archive(edge), "x",
                     lambda _: None)
    assert ops.load(root) == host
    assert set(edge.disks) == {names.disk_image("al", 0)} and edge.mounted == {}


def backup_of(folder: Path, name: str, size: int) -> Path:
    """A backup archive of `name` as the backup unit writes it, holding a file of `size`."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{name}-20260101T000000Z.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path, data in (("hostkeys/ssh_host_ed25519_key", b"k"), ("home/big", None)):
            info = tarfile.TarInfo(path)
            info.size = size if data is None else len(data)
            tar.addfile(info, io.BytesIO(data if data is not None else bytes(info.size)))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.with_name(archive.name + ".sha256").write_text(f"{digest}  {archive.name}\n")
    return archive


def test_a_restore_larger_than_the_disk_is_refused_before_anything_changes(root, tmp_path):
    edge = FakeEdge()
    crew(root, edge, "al")
    ops.set_limits(root, edge, "al", {"disk": "256M"}, restart=False)
    source = backup_of(tmp_path / "b", "al", 240 << 20)
    files = snapshot(root.path)
    edge.calls.clear()
    with pytest.raises(BadInput) as refused:
        ops.restore(root, edge, "al", source, restic.Pick(), None, backup_first=True,
                    say=lambda _: None)
    assert_message(str(refused.value), f"{source} takes 240M, more than a 256M disk "
                   "holds (220M)", "give al a larger disk first: unitgen set al --disk SIZE")
    assert edge.calls == [] and snapshot(root.path) == files
    ops.set_limits(root, edge, "al", {"disk": "1G"}, restart=False)
    ops.restore(root, edge, "al", source, restic.Pick(), None, backup_first=False,
                say=lambda _: None)
    assert ops.load(root).need("al").generation == 1


def test_a_new_person_restored_takes_their_disk_from_the_restore():
    source = [tarfile.TarInfo("home/f")]
    source[0].size = 2 << 30
    need = disk.need(source)
    with pytest.raises(BadInput, match="more than a 1G disk holds"):
        disk.check_fits(need, "1G", "a.tar.gz", "give a larger --disk")
    disk.check_fits(need, "3G", "a.tar.gz", "give a larger --disk")


# ---- switches and removal ------------------------------------------------------------------

def test_switching_to_on_demand_stops_the_workspace_and_starts_its_socket(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.calls.clear()
    ops.set_limits(root, edge, "al", {"on_demand": True}, restart=False)
    assert [c for c in edge.calls if c[0] in ("stop", "start")] == [
        ("stop", names.hold_socket("al"), names.unit("al")), ("start", names.proxy_socket("al"))]
    ops.set_limits(root, edge, "al", {"on_demand": False}, restart=False)
    assert edge.calls[-1] == ("start", names.unit("al"))
    assert ("stop", names.proxy_socket("al"), names.proxy("al")) in edge.calls


def test_a_limit_change_switches_nothing():
    host = admission.admit(Host(), wanted(person("al")))
    after = replace(host.need("al"), memory="1G")
    assert plan.switch(host.workspace(host.need("al")), host.workspace(after)) == ([], [])


def test_remove_stops_every_unit_of_the_person_and_keeps_the_disk(root):
    edge = FakeEdge()
    crew(root, edge, "al", "bo")
    edge.disks = {names.disk_image("al", 0): Usage(1, 0, 1, 0)}
    said = []
    ops.remove(root, edge, "al", purge=False, final_backup=False, say=said.append)
    assert ("stop", names.hold_socket("al"), names.unit("al"), names.timer("al"),
            names.data_unit("al")) in edge.calls
    assert [p.name for p in ops.load(root).people] == ["bo"]
    assert names.disk_image("al", 0) in edge.disks
    assert said[0] == "removed al"


def test_purge_of_someone_removed_already_deletes_what_was_left(root):
    edge = FakeEdge()
    edge.volumes = {"wormhole-home-al.2"}
    edge.disks = {names.disk_image("al", 3): Usage(1, 0, 1, 0)}
    said = []
    ops.remove(root, edge, "al", purge=True, final_backup=False, say=said.append)
    assert said == ["al was removed already; deleted: /var/lib/wormhole/disks/al.3.img, "
                    "wormhole-home-al.2"]
    with pytest.raises(BadInput):
        ops.remove(root, edge, "al", purge=True, final_backup=False, say=said.append)


def test_a_link_in_the_way_refuses_a_change_before_anything_stops(root, tmp_path):
    edge = FakeEdge()
    crew(root, edge, "al", "bo")
    edge.calls.clear()
    shutil.rmtree(root("/etc/wormhole/keys/al"))
    root("/etc/wormhole/keys/al").symlink_to(tmp_path)
    for attempt in (lambda: ops.remove(root, edge, "al", False, False, lambda _: None),
                    lambda: ops.set_limits(root, edge, "al", {"on_demand": True}, False),
                    lambda: ops.firewall(root, edge, True)):
        with pytest.raises(BadInput, match="is a symbolic link"):
            attempt()
    assert [c for c in edge.calls if c[0] in ("stop", "start", "restart")] == []


# ---- disks -------------------------------------------------------------------------------

def with_disk(root: Root, edge: FakeEdge, used: int, mounted: bool = True) -> Host:
    """al added with a 10G disk holding `used` bytes, running (and so mounted) or stopped."""
    host = crew(root, edge, "al")
    edge.disks[names.disk_image("al", 0)] = Usage(10 << 30, used, 655349, 1000)
    if mounted:
        edge.active_units = {names.unit("al"), names.data_unit("al")}
    edge.calls.clear()
    return host


def test_a_larger_disk_grows_online_where_the_host_lets_it(root):
    edge = FakeEdge()
    with_disk(root, edge, 1 << 30)
    applied = ops.set_limits(root, edge, "al", {"disk": "20G"}, restart=False)
    assert applied == ops.Applied(True, "disk: grown to 20G online")
    assert ("try-reload", names.data_unit("al")) in edge.calls
    assert "WORMHOLE_DISK_SIZE=20G\n" in root("/etc/wormhole/env/al.env").read_text()


def test_a_larger_disk_grows_at_the_next_start_when_online_growth_fails(root):
    edge = FakeEdge(failing={"reload"})
    with_disk(root, edge, 1 << 30)
    applied = ops.set_limits(root, edge, "al", {"disk": "20G"}, restart=False)
    assert applied.disk.startswith("disk: grows to 20G at the workspace's next start, as "
                                   "growing it online failed")
    assert applied.disk.endswith("to grow it now: unitgen set al --disk 20G --restart")
    assert ops.load(root).need("al").disk == "20G"
    assert edge.restarted() == []


def test_a_larger_disk_with_restart_unmounts_and_mounts_it_again(root):
    edge = FakeEdge()
    with_disk(root, edge, 1 << 30)
    edge.grows_to = "20G"
    applied = ops.set_limits(root, edge, "al", {"disk": "20G"}, restart=True)
    assert applied == ops.Applied(True, "disk: 20G from the restart")
    assert edge.calls[-1] == ("restart", names.data_unit("al"), names.unit("al"))


def test_a_disk_held_open_elsewhere_at_the_restart_says_it_grows_later(root):
    edge = FakeEdge()
    with_disk(root, edge, 1 << 30)
    applied = ops.set_limits(root, edge, "al", {"disk": "20G"}, restart=True)
    assert applied.disk.startswith("disk: still 10G, as another process's mount namespace "
                                   "held it open at the restart")
    assert applied.disk.endswith("it grows to 20G at a later start")


def test_a_disk_not_mounted_takes_its_new_size_at_the_next_start(root):
    edge = FakeEdge()
    with_disk(root, edge, 1 << 30, mounted=False)
    applied = ops.set_limits(root, edge, "al", {"disk": "20G"}, restart=False)
    assert applied.disk == "disk: 20G from the workspace's next start"
    assert [c for c in edge.calls if c[0] in ("try-reload", "stop", "shrink")] == []


def test_a_smaller_disk_that_the_data_fits_shrinks_offline_and_starts_again(root):
    edge = FakeEdge()
    with_disk(root, edge, 1 << 30)
    applied = ops.set_limits(root, edge, "al", {"disk": "5G"}, restart=False)
    assert applied == ops.Applied(True, "disk: shrunk to 5G offline: the workspace was "
                                        "stopped for it and started again")
    shrink = edge.calls.index(("shrink", names.disk_image("al", 0), "5G"))
    assert ("stop", names.hold_socket("al"), names.unit("al"), names.data_unit("al")) \
        in edge.calls[:shrink]
    assert ("restart", names.unit("al")) in edge.calls[shrink:]
    assert ops.load(root).need("al").disk == "5G"


def test_a_smaller_disk_than_the_data_is_refused_and_nothing_changes(root):
    edge = FakeEdge()
    with_disk(root, edge, 4 << 30)
    files = snapshot(root.path)
    with pytest.raises(BadInput) as refused:
        ops.set_limits(root, edge, "al", {"disk": "4G"}, restart=False)
    assert_message(str(refused.value), "--disk 4G: the disk holds 4G", "give at least 5G")
    assert edge.calls == [] and snapshot(root.path) == files


def test_a_shrink_that_resize2fs_refuses_starts_the_workspace_again_unchanged(root):
    edge = FakeEdge(failing={"shrink"})
    host = with_disk(root, edge, 1 << 30)
    with pytest.raises(Failed, match="shrink failed"):
        ops.set_limits(root, edge, "al", {"disk": "5G"}, restart=False)
    assert ops.load(root) == host
    assert edge.calls[-1] == ("start", names.unit("al"))


def legacy(root: Root, edge: FakeEdge, *people: str) -> Host:
    """People registered by a unitgen before disks: their volumes, no disk image."""
    host = crew(root, edge, *people)
    edge.volumes = {v for p in people for v in names.volumes(p, 0)}
    edge.active_units = {names.unit(p) for p in people}
    return host


def test_the_move_plan_finds_people_marked_or_registered_before_disks():
    host = admission.admit(Host(), wanted(person("al"), person("bo"), person("cy"),
                                          person("dy", on_volumes=True)))
    volumes = {*names.volumes("al", 0), *names.volumes("bo", 0), "wormhole-home-cy.1"}
    images = {names.disk_image("bo", 0)}
    assert [p.name for p in plan.to_move(host, list(host.people), volumes, images)] == [
        "al", "dy"]


def test_upgrade_moves_homes_from_volumes_onto_disks_and_releases_the_volumes(root):
    edge = FakeEdge()
    legacy(root, edge, "al", "bo")
    said = []
    ops.upgrade(root, edge, [], False, None, None, said.append)
    assert set(edge.disks) == {names.disk_image("al", 0), names.disk_image("bo", 0)}
    assert edge.volumes == set() and edge.mounted == {}
    assert not any(p.on_volumes for p in ops.load(root).people)
    migrate = edge.calls.index(("migrate", "al", *names.volumes("al", 0),
                                names.disk_image("al", 0)))
    assert ("stop", names.hold_socket("al"), names.unit("al"), names.data_unit("al")) \
        in edge.calls[:migrate]
    assert "al: moved onto the disk; the volumes were deleted" in said


def test_a_failed_move_leaves_the_home_on_the_volumes_and_the_workspace_running_on_them(root):
    edge = FakeEdge(failing={"migrate"})
    legacy(root, edge, "al")
    said = []
    with pytest.raises(Failed) as failed:
        ops.upgrade(root, edge, [], False, None, None, said.append)
    assert_message(str(failed.value), "the home of al is still on Docker volumes",
                   "run unitgen upgrade again")
    assert edge.volumes == set(names.volumes("al", 0)) and edge.disks == {}
    assert ops.load(root).need("al").on_volumes
    env = root("/etc/wormhole/env/al.env").read_text()
    assert "WORMHOLE_HOME_SOURCE=wormhole-home-al\n" in env and "WORMHOLE_DISK_IMAGE=\n" in env
    assert ("start", names.unit("al")) in edge.calls
    assert any(line.startswith("al: NOT moved onto a disk: migrate failed") for line in said)


def test_a_move_whose_workspace_does_not_answer_goes_back_to_the_volumes(root):
    edge = FakeEdge()
    host = legacy(root, edge, "al")
    edge.broken = {host.need("al").port}
    with pytest.raises(Failed):
        ops.upgrade(root, edge, [], False, None, None, lambda _: None)
    assert edge.volumes == set(names.volumes("al", 0)) and edge.disks == {}
    assert ops.load(root).need("al").on_volumes


def test_every_edge_offers_what_the_live_one_does():
    wanted_names = {n for n in dir(edge_module.Live) if not n.startswith("_")}
    assert wanted_names <= {n for n in dir(FakeEdge) if not n.startswith("_")}
    assert wanted_names <= {n for n in dir(edge_module.Offline) if not n.startswith("_")}
