"""Golden tests in the style of Podman Quadlet's: each case in tests/golden/ is a short input
(a people file) for one behaviour, and what it must generate: the whole list of files or
files that must be absent, and for chosen files the allowed keys per section and expected
values; each case in tests/golden/fail/ is an input and its one-line error,
which names the file and line."""

import shlex
import tomllib
from pathlib import Path

import pytest
import tomli_w

from tests.helpers import described
from unitgen.errors import BadInput
from unitgen.render import render

GOLDEN = Path(__file__).parent / "golden"


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) pairs in order; continuation lines joined."""
    sections: dict[str, list[tuple[str, str]]] = {"": []}
    current, pending = "", ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), " ".join(value.split())))
    return {name: pairs for name, pairs in sections.items() if pairs or name}


def case(path: Path) -> tuple[dict, dict]:
    """Split a case file into its expectations and its input (re-emitted as a people file)."""
    table = tomllib.loads(path.read_text())
    return {"expect": table.pop("expect")}, table


def generated(path: Path) -> dict:
    _, source = case(path)
    return render(described(tomli_w.dumps(source), "people.toml"))


CASES = sorted(GOLDEN.glob("*.toml"))
FAILURES = sorted((GOLDEN / "fail").glob("*.toml"))


LISTING = [p for p in CASES if "files" in case(p)[0]["expect"]]
ABSENT = [p for p in CASES if "absent" in case(p)[0]["expect"]]


@pytest.mark.parametrize("path", LISTING, ids=[p.stem for p in LISTING])
def test_generates_exactly_the_expected_files(path):
    expect, _ = case(path)
    assert sorted(generated(path)) == sorted(expect["expect"]["files"])


@pytest.mark.parametrize("path", ABSENT, ids=[p.stem for p in ABSENT])
def test_generates_none_of_the_absent_files(path):
    expect, _ = case(path)
    absent = expect["expect"]["absent"]
    assert absent and not set(absent) & set(generated(path))


def file_checks(paths):
    for path in paths:
        for name, checks in case(path)[0]["expect"].items():
            if name not in ("files", "absent"):
                yield pytest.param(path, name, checks, id=f"{path.stem}:{name}")


@pytest.mark.parametrize(("path", "name", "checks"), list(file_checks(CASES)))
def test_generated_file_has_the_expected_keys_and_values(path, name, checks):
    artifact = generated(path)[name]
    if "link" in checks:
        assert artifact.link == checks["link"]
        return
    if "lines" in checks:
        assert [line for line in artifact.text.splitlines()
                if not line.startswith("#")] == checks["lines"]
        return
    if "contains" in checks:
        lines = artifact.text.splitlines()
        assert [line for line in checks["contains"] if line not in lines] == []
        assert [text for text in checks.get("absent", []) if text in artifact.text] == []
        return
    sections = parse_unit(artifact.text)
    for section, allowed in checks.get("keys", {}).items():
        assert sorted({k for k, _ in sections[section]}) == sorted(allowed), section
    for dotted, values in checks.get("values", {}).items():
        section, _, key = dotted.rpartition(".")
        assert [v for k, v in sections[section] if k == key] == values, dotted
    if "docker-run" in checks:
        run = next(v for k, v in sections["Service"]
                   if k.startswith("ExecStart") and "/usr/bin/docker run " in v)
        run = run[run.index("/usr/bin/docker run "):].split("; }")[0]
        for args in checks["docker-run"]["args"]:
            assert f" {args} " in f" {run} ", args
        if checks["docker-run"].get("publish-once"):
            words = shlex.split(run)
            assert words.count("--publish") == 1
            assert words.count("--network") == 1 and words[words.index("--network") + 1] in (
                "wormhole", "none")
            assert not {"-p", "--publish-all", "-P"} & set(words)


@pytest.mark.parametrize("path", FAILURES, ids=[p.stem for p in FAILURES])
def test_bad_input_is_refused_with_its_message(path):
    """A failure case is a people file as it is, line numbers and all, whose first line
    holds the expected message: `## error: MESSAGE`."""
    text = path.read_text()
    with pytest.raises(BadInput) as refused:
        described(text, "people.toml")
    assert str(refused.value) == text.splitlines()[0].removeprefix("## error: ")


def test_the_same_input_renders_byte_identical_files():
    first, second = (generated(CASES[0]) for _ in range(2))
    assert first == second


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_host_folder_a_container_mounts_is_relabelled_for_selinux(path):
    """Fedora CoreOS enforces SELinux: a host folder bind-mounted without :z or :Z is
    unreadable in the container, and --mount type=bind never relabels."""
    mounted = 0
    for name, artifact in generated(path).items():
        if artifact.link is not None or not name.endswith(".service"):
            continue
        values = [v for _, v in parse_unit(artifact.text).get("Service", [])]
        words = " ".join(values).replace("'", " ").replace('"', "").split()
        assert not [w for w in words if "type=bind" in w], name
        for at, word in enumerate(words):
            if word in ("--volume", "-v") and words[at + 1].startswith("/"):
                mounted += 1
                options = words[at + 1].split(":")[2].split(",")
                assert {"z", "Z"} & set(options), (name, words[at + 1])
    assert mounted >= 4
