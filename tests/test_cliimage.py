"""The CLI image's build context, taken from this interpreter's environment (the build
itself runs in the system tests and by hand, see docs-notes-fcos.md)."""

from pathlib import Path, PurePosixPath

from unitgen import cliimage, resources


def test_requirements_name_the_distribution_and_drop_extras():
    assert cliimage.requirement("requests>=2.26.0") == "requests"
    assert cliimage.requirement("charset_normalizer<4,>=2") == "charset_normalizer"
    assert cliimage.requirement("pywin32>=304; sys_platform == 'win32'") == "pywin32"
    assert cliimage.requirement("paramiko>=2.4.3; extra == 'ssh'") is None
    assert cliimage.requirement("pytest>=8; extra == \"test\"") is None


def test_the_closure_holds_every_runtime_dependency_and_no_test_tool():
    names = {d.metadata["Name"].lower().replace("_", "-") for d in cliimage.closure()}
    assert {"unitgen", "typer", "jinja2", "markupsafe", "docker", "requests",
            "charset-normalizer", "urllib3", "tomli-w"} <= names
    assert not names & {"pytest", "ruff", "hypothesis", "matplotlib", "pywin32"}


def test_the_site_folder_has_unitgen_its_resources_and_metadata_but_no_scripts():
    files = cliimage.plan()
    assert PurePosixPath("unitgen/cli/app.py") in files
    assert PurePosixPath("unitgen/units/wormhole@.service") in files
    assert PurePosixPath("unitgen/image/Dockerfile") in files
    assert any(p.parts[0].startswith("docker-") and p.name == "METADATA" for p in files)
    assert any(p.parts[0] == "markupsafe" and p.suffix == ".so" for p in files)
    assert not [p for p in files if p.parts[0] in ("..", "bin") or "__pycache__" in p.parts
                or p.suffix in (".pyc", ".pth")]
    assert all(source.is_file() for source in files.values())


def test_the_context_is_the_dockerfile_and_the_site_folder(tmp_path: Path):
    files = {PurePosixPath("unitgen/cli/app.py"): Path(__file__)}
    cliimage.write_context(tmp_path, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile", "site"]
    assert (tmp_path / "site/unitgen/cli/app.py").is_file()
    assert "python3 -m unitgen" in (tmp_path / "Dockerfile").read_text()


def test_the_workspace_image_context_leaves_the_cli_image_out():
    from docker.utils import exclude_paths

    folder = resources.folder("image")
    patterns = (folder / ".dockerignore").read_text().splitlines()
    sent = exclude_paths(str(folder), [p for p in patterns if p and not p.startswith("#")])
    assert "Dockerfile" in sent
    assert not [p for p in sent if p.startswith("cli")]
