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
