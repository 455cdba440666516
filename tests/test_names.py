"""unitgen.names: every name a person's things get, and reading a name back."""

from hypothesis import given
from hypothesis import strategies as st

from unitgen import names
from unitgen.validate import NAME

KINDS = [names.unit, names.data_unit, names.backup_unit, names.timer, names.proxy,
         names.proxy_socket, names.container, names.env_file, names.keys_file,
         names.person_file]
people = st.from_regex(NAME, fullmatch=True)


@given(people, st.sampled_from(KINDS))
def test_a_name_reads_back_as_its_person(name, kind):
    assert kind.of(kind(name)) == name


def test_names_are_what_the_units_and_the_engine_expect():
    assert [kind("al") for kind in KINDS] == [
        "wormhole@al.service", "wormhole-data@al.service", "wormhole-backup@al.service",
        "wormhole-backup@al.timer", "wormhole-proxy@al.service", "wormhole-proxy@al.socket",
        "wormhole-al", "/etc/wormhole/env/al.env", "/etc/wormhole/keys/al/authorized_keys",
        "/etc/wormhole/people/al.toml"]
    assert names.TEMPLATE == "/etc/systemd/system/wormhole@.service"


def test_what_is_no_name_of_a_kind_reads_back_as_nobody():
    assert names.env_file.of("/etc/wormhole/env/a/b.env") is None
    assert names.env_file.of("/etc/wormhole/env/.env") is None
    assert names.unit.of("wormhole-data@al.service") is None


@given(people, st.integers(0, 10**6))
def test_a_volume_reads_back_as_its_generation(name, generation):
    for volume in names.volumes(name, generation):
        assert names.generation_of(name, volume) == generation
        assert names.generation_of(name + "x", volume) is None


OWNED = ["/etc/wormhole/env/al.env", "/etc/wormhole/wormhole.toml",
         "/etc/systemd/system/wormhole@.service",
         "/etc/systemd/system/wormhole@al.service.d/10-start-order.conf",
         "/etc/systemd/system/multi-user.target.wants/wormhole.target",
         "/etc/systemd/system/docker.service.wants/wormhole-firewall.service"]
FOREIGN = ["/etc/fstab", "/../../tmp/x", "/etc/wormhole/../fstab", "etc/wormhole/x",
           "/etc/wormhole", "/etc/systemd/system/docker.service",
           "/etc/systemd/system/docker.service.d/override.conf",
           "/etc/systemd/system/multi-user.target.wants/sshd.service",
           "/etc/systemd/system/wormhole@.service/../../../fstab", "//etc/wormhole/x",
           "/etc/systemd/system/wormhole.target.wants/x/wormhole@a.service"]


def test_unitgen_owns_its_folder_and_its_own_units_only():
    assert [p for p in OWNED if not names.owned(p)] == []
    assert [p for p in FOREIGN if names.owned(p)] == []
