"""unitgen.validate: every check's accepted values, canonical forms and refusals."""

import pytest

from tests.helpers import assert_message, public
from unitgen import validate
from unitgen.errors import BadInput
from unitgen.keys import parse_key
from unitgen.model import Host, Person, Settings

WHERE = "/etc/wormhole/wormhole.toml"
PERSON = "/etc/wormhole/people/alice.toml"


def refused(check, *args) -> str:
    with pytest.raises(BadInput) as caught:
        check(*args)
    return str(caught.value)


@pytest.fixture
def key_line(keygen) -> str:
    return public(keygen("ed25519", comment="alice@laptop")).read_text().strip()


# ---- names ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["alice", "a", "bob-2", "x_y", "a" * 32, "z9"])
def test_name_accepted(value):
    assert validate.name(value) == value


NOT_ALLOWED = ("is not allowed",
               "use lowercase letters, digits, '-' and '_', starting with a letter")


@pytest.mark.parametrize(("value", "parts"), [
    pytest.param("", ("the user name is empty", "give a lowercase name such as alice"),
                 id="empty"),
    pytest.param("a" * 33, ("is longer than 32 characters", "choose a shorter one"), id="33"),
    *(pytest.param(v, NOT_ALLOWED, id=repr(v)) for v in
      ["Alice", "1abc", "-x", "_x", "a.b", "a/b", "..", "a b", "a;b", "a$b", "a@b", "é",
       "alice\n", "a\tb"]),
    *(pytest.param(v, (f"user name '{v}' is reserved", "choose another name"), id=v)
      for v in ["root", "user", "core", "docker", "all"]),
])
def test_name_refused(value, parts):
    assert_message(refused(validate.name, value), *parts)


def test_name_too_long_message_is_one_line_even_with_a_newline():
    assert_message(refused(validate.name, "a" * 33 + "\nx"), "longer than 32 characters")


# ---- memory -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "canonical"), [
    ("512M", "512M"), ("512m", "512M"), ("1g", "1G"), ("1024M", "1G"), ("1536M", "1536M"),
    ("65536K", "64M"), ("2097152k", "2G"), ("64M", "64M"), ("1T", "1T"), ("1024G", "1T"),
    (" 2G ", "2G"), ("67108864", "64M"), ("3072m", "3G"),
])
def test_memory_canonical(value, canonical):
    assert validate.memory(value) == canonical


NOT_A_SIZE = ("is not a size", "give a number with K, M, G or T (e.g. 512M)")
OUT_OF_RANGE = ("is outside 64M to 1T", "give a size in that range")


@pytest.mark.parametrize(("value", "parts"), [
    ("512 MB", NOT_A_SIZE), ("", NOT_A_SIZE), ("-1G", NOT_A_SIZE), ("1.5G", NOT_A_SIZE),
    ("1GB", NOT_A_SIZE), ("G", NOT_A_SIZE), ("1P", NOT_A_SIZE),
    ("63M", OUT_OF_RANGE), ("2T", OUT_OF_RANGE), ("0", OUT_OF_RANGE), ("2048K", OUT_OF_RANGE),
])
def test_memory_refused(value, parts):
    message = refused(validate.memory, value)
    assert message.startswith("--memory: ")
    assert_message(message, *parts)


def test_memory_names_where_it_came_from():
    assert refused(validate.memory, "63M", "x.toml: memory").startswith("x.toml: memory: '63M' ")


def test_memory_out_of_range_message_is_one_line():
    assert_message(refused(validate.memory, "63M\n"), *OUT_OF_RANGE)


# ---- images -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "wormhole:latest", "wormhole", "ghcr.io/org/ws:1.2", "localhost:5000/ws",
    "registry.example.com/a/b_c:v1-x", "my__ws", "a-b--c", "ws@sha256:" + "ab" * 32,
    "ws:" + "t" * 128,
])
def test_image_accepted(value):
    assert validate.image(value) == value


@pytest.mark.parametrize("value", [
    "", "Wormhole", "ws:", "ws::x", "-ws", "ws latest", "ws:" + "t" * 129, "ws:.x",
    "ws@sha256:abc", "ws/", "/ws", "ws\n",
])
def test_image_refused(value):
    message = refused(validate.image, value)
    assert message.startswith("--image: ")
    assert_message(message, "is not an image reference", "give one like wormhole:latest")


@pytest.mark.parametrize("value", ["wormhole:tagé", "localhost:\u0665\u0660\u0660\u0660/ws"])
def test_image_refuses_non_ascii(value):
    refused(validate.image, value)


# ---- ports ------------------------------------------------------------------------------

@pytest.fixture
def host(key_line) -> Host:
    return Host(Settings(), (Person("alice", 2200, (parse_key(key_line),)),))


@pytest.mark.parametrize("value", [2201, 2500, 2999])
def test_port_accepted(host, value):
    assert validate.port(value, host) == value


@pytest.mark.parametrize(("value", "parts"), [
    (2200, ("port 2200 is taken by alice", "pick another or leave it out")),
    (2199, ("port 2199 is outside the range 2200-2999",
            "pick one inside it or change port_min/port_max in the config")),
    (3000, ("port 3000 is outside the range 2200-2999",)),
    (22, ("port 22 is outside the range",)),
])
def test_port_refused(host, value, parts):
    message = refused(validate.port, value, host)
    assert message.startswith("--port: ")
    assert_message(message, *parts)


# ---- settings ---------------------------------------------------------------------------

def test_settings_defaults_for_an_empty_table():
    assert validate.settings({}, WHERE) == Settings()


def test_settings_allow_from_takes_addresses_and_networks():
    table = {"allow_from": ["10.0.0.1", "10.1.0.0/16", "2001:db8::/64"]}
    assert validate.settings(table, WHERE).allow_from == ("10.0.0.1", "10.1.0.0/16",
                                                          "2001:db8::/64")


def test_settings_every_key():
    table = {"image": "ghcr.io/o/ws:1", "memory": "1024m", "pids": 64, "port_min": 3000,
             "port_max": 3000, "publish_address": "127.0.0.1", "host": "ws.example.com"}
    assert validate.settings(table, WHERE) == Settings(
        image="ghcr.io/o/ws:1", memory="1G", pids=64, port_min=3000, port_max=3000,
        publish_address="127.0.0.1", host="ws.example.com")


WHOLE = "is not allowed; give a whole number from"


@pytest.mark.parametrize(("table", "parts"), [
    pytest.param({"colour": "red"}, ("unknown key 'colour'", "the README lists the keys"),
                 id="unknown-key"),
    pytest.param({"image": 5}, ("image = 5 is not a string; give it in quotes",), id="image-int"),
    pytest.param({"memory": 512}, ("memory = 512 is not a string",), id="memory-int"),
    pytest.param({"memory": "63M"}, ("memory: '63M' is outside 64M to 1T",), id="memory-small"),
    pytest.param({"image": "Bad"}, ("image: 'Bad' is not an image reference",), id="image-bad"),
    pytest.param({"pids": "1024"}, (f"pids = '1024' {WHOLE} 32 to 4194304",), id="pids-str"),
    pytest.param({"pids": True}, (f"pids = True {WHOLE}",), id="pids-bool"),
    pytest.param({"pids": 1.5}, (f"pids = 1.5 {WHOLE}",), id="pids-float"),
    pytest.param({"pids": 31}, (f"pids = 31 {WHOLE}",), id="pids-low"),
    pytest.param({"port_min": 1024}, (f"port_min = 1024 {WHOLE} 1025 to 65535",),
                 id="port-min-low"),
    pytest.param({"port_max": 65536}, (f"port_max = 65536 {WHOLE}",), id="port-max-high"),
    pytest.param({"port_min": 3000, "port_max": 2500},
                 ("port_min 3000 is above port_max 2500", "swap them"), id="min-above-max"),
    pytest.param({"port_min": 3000}, ("port_min 3000 is above port_max 2999",),
                 id="min-above-default-max"),
    pytest.param({"publish_address": "localhost"},
                 ("publish_address: 'localhost' is not an IP address",
                  'give one such as 0.0.0.0, or "" for every address'), id="address-name"),
    pytest.param({"publish_address": "1.2.3"}, ("is not an IP address",), id="address-short"),
    pytest.param({"publish_address": "[::1]"}, ("is not an IP address",), id="address-brackets"),
    pytest.param({"publish_address": 0}, ("is not a string; give it in quotes",), id="address-int"),
    pytest.param({"host": "bad host"}, ("host: 'bad host' is not a host name",
                                        "give one such as ws.example.com"), id="host-space"),
    pytest.param({"host": "-ws"}, ("is not a host name",), id="host-dash"),
    pytest.param({"allow_from": "10.0.0.1"}, ("allow_from = '10.0.0.1' is not a list",),
                 id="allow-from-string"),
    pytest.param({"allow_from": ["gw.example.com"]},
                 ("allow_from[0]: 'gw.example.com' is not an address or network",
                  "give one such as 10.0.0.1 or 10.0.0.0/24"), id="allow-from-name"),
    pytest.param({"allow_from": ["fe80::1%eth0"]}, ("is not an address or network",),
                 id="allow-from-zone"),
    pytest.param({"allow_from": ["10.0.0.0/33"]}, ("is not an address or network",),
                 id="allow-from-prefix"),
])
def test_settings_refused(table, parts):
    message = refused(validate.settings, table, WHERE)
    assert message.startswith(f"{WHERE}: ")
    assert_message(message, *parts)


@pytest.mark.parametrize(("address", "stored", "publish"), [
    ("", "", "2200:22"),
    ("0.0.0.0", "0.0.0.0", "0.0.0.0:2200:22"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.1:2200:22"),
    ("::1", "::1", "[::1]:2200:22"),
    ("0:0:0:0:0:0:0:1", "::1", "[::1]:2200:22"),
    ("2001:DB8::5", "2001:db8::5", "[2001:db8::5]:2200:22"),
])
def test_publish_address(key_line, address, stored, publish):
    settings = validate.settings({"publish_address": address}, WHERE)
    person = Person("alice", 2200, (parse_key(key_line),))
    assert settings.publish_address == stored
    assert Host(settings, (person,)).workspace(person).publish == publish


# ---- people -----------------------------------------------------------------------------

def test_person_accepted(key_line):
    table = {"port": 2201, "keys": [f"  {key_line}  "], "memory": "1024M", "image": "ws:2"}
    person = validate.person("alice", table, PERSON)
    assert person == Person("alice", 2201, (parse_key(key_line),), "1G", "ws:2")


def test_person_limits_default_to_none(key_line):
    person = validate.person("alice", {"port": 2201, "keys": [key_line]}, PERSON)
    assert (person.memory, person.image) == (None, None)


@pytest.mark.parametrize(("table", "parts"), [
    pytest.param({"port": 2200, "keys": "KEY", "shell": "zsh"},
                 ("unknown key 'shell'", "the README lists the keys"),
                 id="unknown-key"),
    pytest.param({"keys": "KEY"}, ("port is missing", "give port = N"), id="no-port"),
    pytest.param({"port": "2200", "keys": "KEY"}, ("port = '2200' is not allowed",),
                 id="port-str"),
    pytest.param({"port": 80, "keys": "KEY"}, ("port = 80 is not allowed",),
                 id="port-low"),
    pytest.param({"port": 2200}, ("keys is missing or empty",),
                 id="no-keys"),
    pytest.param({"port": 2200, "keys": []}, ("keys is missing or empty",), id="keys-empty"),
    pytest.param({"port": 2200, "keys": "KEY"}, ("keys is missing or empty",), id="keys-str"),
    pytest.param({"port": 2200, "keys": ["KEY", 5]}, ("keys is missing or empty",),
                 id="keys-int"),
    pytest.param({"port": 2200, "keys": ["KEY", "ssh-dss AAAA"]},
                 ("key 2: DSA keys are weak", "ssh-keygen -t ed25519"), id="key-dsa"),
    pytest.param({"port": 2200, "keys": ["no-pty KEY"]}, ("key 1: key options are not supported",),
                 id="key-options"),
    pytest.param({"port": 2200, "keys": ["KEY"], "memory": "1.5G"},
                 ("memory: '1.5G' is not a size",), id="memory"),
    pytest.param({"port": 2200, "keys": ["KEY"], "image": "Ws"},
                 ("image: 'Ws' is not an image reference",), id="image"),
])
def test_person_refused(key_line, table, parts):
    if isinstance(table.get("keys"), list):
        table = {**table, "keys": [k.replace("KEY", key_line) if isinstance(k, str) else k
                                   for k in table["keys"]]}
    message = refused(validate.person, "alice", table, PERSON)
    assert message.startswith(f"{PERSON}: ")
    assert_message(message, *parts)


def test_person_refuses_a_bad_name_naming_the_file(key_line):
    message = refused(validate.person, "Alice", {"port": 2200, "keys": [key_line]}, PERSON)
    assert message.startswith(f"{PERSON}: ")
    assert_message(message, *NOT_ALLOWED)


def test_name_prefixes_where():
    assert refused(validate.name, "root", "x.toml").startswith("x.toml: user name 'root'")


def test_person_refuses_a_key_given_twice(key_line):
    table = {"port": 2200, "keys": [key_line, key_line + " again"]}
    assert_message(refused(validate.person, "alice", table, PERSON), "is given twice",
                   "give each key once")


def test_person_duplicate_key_names_the_file(key_line):
    table = {"port": 2200, "keys": [key_line, key_line]}
    assert refused(validate.person, "alice", table, PERSON).startswith(f"{PERSON}: ")


def test_person_refuses_a_key_line_with_a_newline(key_line):
    smuggled = f'{key_line}\ncommand="/bin/sh" {key_line.rsplit(" ", 1)[0]}'
    refused(validate.person, "alice", {"port": 2200, "keys": [smuggled]}, PERSON)
