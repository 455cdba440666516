"""unitgen.ops and its plans with a fake edge: admission, upgrade batches and their rollback,
restore generations, switches; the files under a throwaway root are real."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_edge import FakeEdge
from tests.helpers import assert_message
from unitgen import admission, names, ops, plan
from unitgen.admission import Wanted
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

def test_restore_generations_count_up_past_every_volume_and_drop_stale_ones():
    host = admission.admit(Host(), wanted(person("al")))
    existing = ["wormhole-home-al", "wormhole-hostkeys-al", "wormhole-home-al.3",
                "wormhole-home-alan", "wormhole-home-al.x"]
    step = plan.restore(host, host.need("al"), existing)
    assert step.person.generation == 4
    assert step.volumes == ("wormhole-home-al.4", "wormhole-hostkeys-al.4")
    assert step.stale == ["wormhole-home-al.3", "wormhole-home-alan", "wormhole-home-al.x"]
    assert plan.next_generation("al", ["wormhole-home-alan", "wormhole-home-al.x"]) == 0


def test_a_restore_that_answers_moves_the_person_and_deletes_the_old_volumes(root, tmp_path):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.active_units = {names.unit("al")}
    ops._restore(root, edge, ops.load(root), ops.load(root).need("al"),
                 lambda w, volumes: edge.extract(w.image, None, "al", volumes), "x",
                 lambda _: None)
    assert ops.load(root).need("al").generation == 1
    assert edge.volumes == {"wormhole-home-al.1", "wormhole-hostkeys-al.1"}


def test_a_restore_that_does_not_answer_goes_back_to_the_old_data(root, tmp_path):
    edge = FakeEdge()
    host = crew(root, edge, "al")
    edge.active_units = {names.unit("al")}
    edge.broken = {host.need("al").port}
    before = root("/etc/wormhole/env/al.env").read_text()
    with pytest.raises(Failed) as failed:
        ops._restore(root, edge, host, host.need("al"),
                     lambda w, volumes: edge.extract(w.image, None, "al", volumes), "x",
                     lambda _: None)
    assert_message(str(failed.value), "al did not answer on the restored data",
                   "went back to its previous data")
    assert ops.load(root) == host
    assert root("/etc/wormhole/env/al.env").read_text() == before
    assert edge.volumes == {"wormhole-home-al", "wormhole-hostkeys-al"}


# ---- switches and removal ------------------------------------------------------------------

def test_switching_to_on_demand_stops_the_workspace_and_starts_its_socket(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.calls.clear()
    ops.set_limits(root, edge, "al", {"on_demand": True}, restart=False)
    assert [c for c in edge.calls if c[0] in ("stop", "start")] == [
        ("stop", names.unit("al")), ("start", names.proxy_socket("al"))]
    ops.set_limits(root, edge, "al", {"on_demand": False}, restart=False)
    assert edge.calls[-1] == ("start", names.unit("al"))
    assert ("stop", names.proxy_socket("al"), names.proxy("al")) in edge.calls


def test_a_limit_change_switches_nothing():
    host = admission.admit(Host(), wanted(person("al")))
    after = replace(host.need("al"), memory="1G")
    assert plan.switch(host.workspace(host.need("al")), host.workspace(after)) == ([], [])


def test_remove_stops_every_unit_of_the_person_and_keeps_the_volumes(root):
    edge = FakeEdge()
    crew(root, edge, "al", "bo")
    said = []
    ops.remove(root, edge, "al", purge=False, final_backup=False, say=said.append)
    assert ("stop", names.unit("al"), names.timer("al"), names.data_unit("al")) in edge.calls
    assert [p.name for p in ops.load(root).people] == ["bo"]
    assert "wormhole-home-al" in edge.volumes
    assert said[0] == "removed al"


def test_purge_of_someone_removed_already_deletes_what_was_left(root):
    edge = FakeEdge()
    edge.volumes = {"wormhole-home-al.2"}
    said = []
    ops.remove(root, edge, "al", purge=True, final_backup=False, say=said.append)
    assert said == ["al was removed already; deleted volumes: wormhole-home-al.2"]
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
