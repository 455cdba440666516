"""unitgen.fleet and a fleet's people file: the [hosts] and [gateway] tables, ports unique
across the fleet, each host's own description, the gateway's files, the ssh config and the
plan. Pure."""

from dataclasses import replace

import pytest

from tests.fleet_fixture import NAMES, WHERE, compiled, key, text
from tests.helpers import assert_message
from unitgen import fleet, placement
from unitgen.errors import BadInput
from unitgen.placement import Locked
from unitgen.registry import Gateway, read_people_file


def refused(source: str, lock: dict | None = None) -> str:
    with pytest.raises(BadInput) as caught:
        compiled(source, lock)
    assert_message(str(caught.value))
    return str(caught.value)


# ---- the people file -------------------------------------------------------------------

def test_a_people_file_without_hosts_is_one_host_as_before():
    single = "\n".join(f'[people.{n}]\nkeys = ["{key(n)}"]' for n in NAMES)
    found = read_people_file(single, WHERE)
    assert found.fleet is None
    assert [w.person.name for w in found.wanted] == NAMES
    assert not found.host.firewall


def test_a_fleet_file_gives_hosts_gateway_and_placement_people():
    source = text({"h1": 10, "h2": 20}, NAMES, extra={
        "alice": 'host = "h2"', "bob": 'labels = ["gpu"]\nmemory = "1G"'})
    source = source.replace('people = 20', 'people = 20\nlabels = ["gpu"]')
    found = read_people_file(source, WHERE)
    assert [(h.name, h.address, h.people, h.labels) for h in found.fleet.hosts] == [
        ("h1", "10.0.0.11", 10, ()), ("h2", "10.0.0.12", 20, ("gpu",))]
    assert found.fleet.gateway == Gateway("10.0.0.1", ("10.0.0.1",))
    alice, bob = found.fleet.people[:2]
    assert (alice.host, bob.labels, bob.memory) == ("h2", ("gpu",), 1 << 30)
    # the pin and labels are placement's; the person registered on a host has neither
    assert found.wanted[1].person.memory == "1G"
    assert found.host.firewall  # a fleet's hosts run their firewall


def test_the_gateway_may_be_a_name_with_the_address_the_hosts_see():
    source = text({"h1": 10}, ["alice"], gateway="gw.example.com").replace(
        'address = "gw.example.com"', 'address = "gw.example.com"\nallow_from = ["10.9.0.1"]')
    assert read_people_file(source, WHERE).fleet.gateway == Gateway("gw.example.com",
                                                                   ("10.9.0.1",))


GATEWAY_LINE = 'address = "10.0.0.1"'


@pytest.mark.parametrize(("change", "parts"), [
    (lambda s: s.replace("[gateway]\n" + GATEWAY_LINE, ""),
     ("people.toml: a fleet needs [hosts.NAME] tables and [gateway]; give [gateway]",)),
    (lambda s: s.replace("[hosts.h1]", "[elsewhere.h1]"),
     ("unknown table 'elsewhere'",)),
    (lambda s: s.split("[hosts.h1]")[0] + "[people.alice]\nkeys = []\n",
     ("a fleet needs [hosts.NAME] tables and [gateway]; give [hosts.NAME]",)),
    (lambda s: s.replace("[hosts.h1]", "[hosts.gateway]"),
     ("[hosts.gateway]: the name gateway is the front door's; name the host otherwise",)),
    (lambda s: s.replace('address = "10.0.0.11"', 'address = "h1.example.com"'),
     ("[hosts.h1]: address h1.example.com is a name; the gateway maps people to their host's "
      "IP address, so give that",)),
    (lambda s: s.replace(GATEWAY_LINE, 'address = "gw.example.com"'),
     ("[gateway]: address gw.example.com is a name; give allow_from",)),
    (lambda s: s.replace(GATEWAY_LINE, GATEWAY_LINE + "\nport = 22"),
     ("[gateway]: give address = ",)),
    (lambda s: s.replace(GATEWAY_LINE, GATEWAY_LINE + "\nallow_from = []"),
     ("[gateway]: allow_from is empty",)),
    (lambda s: s.replace(GATEWAY_LINE, GATEWAY_LINE + '\nallow_from = ["gw"]'),
     ("[gateway]: allow_from[0]: 'gw' is not an address or network",)),
    (lambda s: "[firewall]\nenabled = false\n" + s,
     ("[firewall]: a fleet's hosts let ssh in from the gateway only", "drop enabled = false")),
    (lambda s: '[defaults]\nallow_from = ["10.0.0.1"]\n' + s,
     ("[defaults]: allow_from is set by [gateway] in a fleet",)),
    (lambda s: s.replace('keys = ["' + key("bob") + '"]',
                         'keys = ["' + key("bob") + '"]\nhost = "h9"'),
     ("[people.bob]: host 'h9' is not in [hosts]; give one of h1",)),
], ids=["no-gateway", "unknown-table", "no-hosts", "host-named-gateway", "host-dns-name",
        "gateway-name-alone", "gateway-unknown-key", "gateway-empty-allow", "gateway-bad-allow",
        "firewall-off", "defaults-allow-from", "pin-unknown-host"])
def test_fleet_tables_refused(change, parts):
    source = change(text({"h1": 10}, ["alice", "bob"]))
    with pytest.raises(BadInput) as caught:
        read_people_file(source, WHERE)
    assert_message(str(caught.value), *parts)
    assert str(caught.value).startswith(WHERE)


def test_a_pin_or_labels_in_a_one_host_file_is_refused():
    with pytest.raises(BadInput) as caught:
        read_people_file(f'[people.alice]\nkeys = ["{key("alice")}"]\nhost = "h1"\n', WHERE)
    assert_message(str(caught.value), "people.toml:1: [people.alice]: host is for a fleet")


def test_single_host_commands_refuse_a_fleet_file(tmp_path):
    from unitgen import inputs

    path = tmp_path / "people.toml"
    path.write_text(text({"h1": 10}, ["alice"]))
    with pytest.raises(BadInput) as caught:
        inputs.people_file(path)
    assert_message(str(caught.value), "describes a fleet", "unitgen fleet ignition")
    assert inputs.any_people_file(path).fleet is not None


# ---- ports and hosts -------------------------------------------------------------------

def test_ports_are_unique_across_the_fleet_lowest_free_in_name_order():
    result = compiled(text({"h1": 10, "h2": 10, "h3": 10}, NAMES))
    assert {n: at.port for n, at in result.after.items()} == {
        n: 2200 + i for i, n in enumerate(NAMES)}
    assert len({at.host for at in result.after.values()}) > 1


def test_locked_ports_stay_and_newcomers_take_the_free_ones():
    lock = {"bob": Locked("h1", 2250), "erin": Locked("h2", 2200)}
    result = compiled(text({"h1": 10, "h2": 10}, NAMES), lock)
    ports = {n: at.port for n, at in result.after.items()}
    assert (ports["bob"], ports["erin"]) == (2250, 2200)
    assert [ports[n] for n in ("alice", "carol", "dave", "frank")] == [2201, 2202, 2203, 2204]


def test_the_port_of_someone_who_left_stays_taken_until_they_are_removed():
    lock = {"zoe": Locked("h1", 2200)}
    result = compiled(text({"h1": 10}, ["alice"]), lock)
    assert result.after["alice"].port == 2201
    assert [(m.person, m.kind) for m in result.moves] == [("alice", "add"), ("zoe", "remove")]


def test_a_given_port_is_kept_and_must_match_the_lock():
    source = text({"h1": 10}, ["alice", "bob"], extra={"bob": "port = 2300"})
    assert compiled(source).after["bob"].port == 2300
    message = refused(source, {"bob": Locked("h1", 2201)})
    assert "port 2300 is not bob's locked port 2201" in message
    assert "a person's port is their ssh line" in message
    taken = refused(source, {"alice": Locked("h1", 2300)})
    assert "[people.bob]: port 2300 is alice's; give another or leave it out" in taken


def test_no_port_left_is_one_line():
    source = text({"h1": 10}, NAMES, head="[defaults]\nport_min = 2200\nport_max = 2203\n")
    assert "no free port left in 2200-2203 for 6 people; widen port_min/port_max" in \
        refused(source)


def test_one_key_held_by_two_people_is_refused():
    source = text({"h1": 10}, ["alice", "bob"]).replace(key("bob"), key("alice"))
    message = refused(source)
    assert "is held by alice and bob; the gateway lets a key into one workspace" in message


def test_each_host_admits_its_own_people_with_their_fleet_ports():
    source = text({"h1": 10, "h2": 10}, NAMES, extra={"carol": 'memory = "1G"'})
    result = compiled(source)
    seen = []
    for name, host in result.hosts().items():
        assert host.firewall
        assert host.settings.allow_from == ("10.0.0.1",)
        for person in host.people:
            assert result.after[person.name] == Locked(name, person.port)
            seen.append(person.name)
    assert sorted(seen) == NAMES
    assert result.person("carol").memory == "1G"


def test_a_host_that_cannot_admit_its_people_is_one_line():
    source = text({"h1": 10}, ["alice"], head='[defaults]\nkey_policy = "hardware"\n')
    assert refused(source).startswith("people.toml:14: [people.alice]: key SHA256:")
    assert 'is not a hardware key and key_policy is "hardware"' in refused(source)


# ---- the front door --------------------------------------------------------------------

def test_gateway_files_map_names_and_let_each_key_open_only_its_workspace():
    result = compiled(text({"h1": 10, "h2": 10}, ["alice", "bob"]))
    files = fleet.gateway_files(result, result.after)
    hosts = files["/etc/hosts"].text.splitlines()
    assert [line for line in hosts if "wormhole" in line and not line.startswith("#")] == [
        f"{result.address(result.after[n].host)} {n}.wormhole" for n in ("alice", "bob")]
    assert "127.0.0.1 localhost localhost.localdomain" in hosts
    keys = [line for line in files["/etc/wormhole/gateway/authorized_keys"].text.splitlines()
            if not line.startswith("#")]
    assert keys == [
        f'restrict,port-forwarding,permitopen="alice.wormhole:2200" {key("alice")}',
        f'restrict,port-forwarding,permitopen="bob.wormhole:2201" {key("bob")}']
    sshd = files["/etc/ssh/sshd_config.d/40-wormhole-gateway.conf"].text
    assert "Match User wormhole\n    AuthorizedKeysFile /etc/wormhole/gateway/authorized_keys" \
        in sshd
    assert "    AllowTcpForwarding local\n" in sshd and "    ForceCommand /usr/sbin/nologin" in sshd


def test_the_gateway_follows_the_state_it_is_given():
    result = compiled(text({"h1": 10, "h2": 10}, ["alice"]))
    state = {"alice": Locked("h2", 2200), "gone": Locked("h2", 2201),
             "lost": Locked("h9", 2202)}
    lines = fleet.gateway_files(result, state)["/etc/hosts"].text
    assert "10.0.0.12 alice.wormhole" in lines
    assert "gone" not in lines and "lost" not in lines  # left the file; on a lost host


def test_ssh_config_is_the_same_wherever_the_person_is():
    source = text({"h1": 10, "h2": 10}, ["alice", "bob"])
    first = compiled(source)
    lock = dict(first.after)
    on_h1, on_h2 = replace(lock["alice"], host="h1"), replace(lock["alice"], host="h2")
    texts = {fleet.ssh_config(compiled(source, {**lock, "alice": at}), "alice")
             for at in (on_h1, on_h2)}
    assert texts == {
        "# alice's workspace through the fleet's front door; it stays the same when the\n"
        "# workspace moves to another host. Log in with: ssh alice.wormhole\n"
        "Host alice.wormhole\n"
        "    HostName alice.wormhole\n"
        "    Port 2200\n"
        "    User user\n"
        "    ProxyJump wormhole@10.0.0.1\n"}


def test_ssh_config_brackets_an_ipv6_gateway_and_waits_for_the_lock():
    source = text({"h1": 10}, ["alice"], gateway="2001:db8::1")
    with pytest.raises(BadInput) as caught:
        fleet.ssh_config(compiled(source), "alice")
    assert_message(str(caught.value), "alice is not in the lock yet", "run unitgen fleet apply")
    locked = compiled(source, {"alice": Locked("h1", 2200)})
    assert "    ProxyJump wormhole@[2001:db8::1]\n" in fleet.ssh_config(locked, "alice")


# ---- the plan --------------------------------------------------------------------------

def test_plan_lines_show_hosts_ports_and_the_moves_with_reasons():
    source = text({"h1": 10, "h2": 10}, ["alice", "bob", "carol"],
                  extra={"bob": 'host = "h2"'})
    lock = {"alice": Locked("h1", 2200), "bob": Locked("h1", 2201), "zed": Locked("h2", 2202)}
    result = compiled(source, lock)
    lines = fleet.plan_lines(result, "people.lock")
    carol = result.after["carol"]
    assert lines == [
        "PERSON               HOST              PORT",
        "alice                h1                2200",
        "bob                  h2                2201",
        f"carol                {carol.host:<16} {carol.port:>5}",
        f"people per host: h1 {1 + (carol.host == 'h1')}, h2 {1 + (carol.host == 'h2')}",
        "3 move(s) since people.lock; make them with: unitgen fleet apply",
        "PERSON               FROM             TO               REASON",
        "bob                  h1               h2               pinned to h2",
        f"carol                -                {carol.host:<16} new",
        "zed                  h2               -                not in the people file"]
    assert carol.port == 2203


def test_plan_without_moves_says_so():
    result = compiled(text({"h1": 10}, ["alice"]), {"alice": Locked("h1", 2200)})
    assert fleet.plan_lines(result, "people.lock")[-1] == "no moves since people.lock"


def test_placed_moves_are_those_of_people_in_the_lock():
    lock = {"alice": Locked("h9", 2200)}  # h9 left the file: alice is placed and must move
    result = compiled(text({"h1": 10}, ["alice", "bob"]), lock)
    assert [(m.person, m.reason) for m in fleet.placed_moves(result)] == [
        ("alice", "h9 is gone")]


def test_the_lock_of_a_compiled_fleet_reads_back():
    result = compiled(text({"h1": 10, "h2": 10}, NAMES))
    again = placement.load_lock(placement.dump_lock(result.after), "people.lock")
    assert again == result.after
    assert compiled(text({"h1": 10, "h2": 10}, NAMES), again).moves == ()
