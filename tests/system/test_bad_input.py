"""Bad input, as one table: every case exits 2 with one line that names the problem and the
fix, and changes nothing: not a file under /etc/wormhole, /etc/systemd/system or the backups,
not a container, not a volume."""

import io
import tarfile

import pytest

A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSp0mXtwfPHZKNtIOTANlljzl/IAV6tK4UFcNPiNpM0 a@x"
B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOF5axSyZPaF1zAuAeOFnTArJae1M1tYRi4Th/FSTY1v b@x"
DSA = ("ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2N"
       " d@x")
# A mounted disk's image changes its time whenever the kernel writes to it (its journal,
# the lazy zeroing of inode tables after a first mount): disks are compared without it.
STATE = ("find /etc/wormhole /etc/systemd/system /var/lib/wormhole -xdev \\( -name '*.img' "
         "-printf '%p %y %m %s\\n' \\) -o -printf '%p %y %m %s %T@\\n' 2>/dev/null | sort; "
         "docker ps -a --format "
         "'{{.ID}} {{.State}} {{.CreatedAt}}'; docker volume ls -q; ls /root/out.ign 2>&1; true")
FILES = {
    "/root/bad/a.pub": A + "\n",
    "/root/bad/b.pub": B + "\n",
    "/root/bad/dsa.pub": DSA + "\n",
    "/root/bad/private": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"
                         "-----END OPENSSH PRIVATE KEY-----\n",
    "/root/bad/truncated.pub": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 r@x\n",
    "/root/bad/garbage.pub": "ssh-ed25519 not*base64 g@x\n",
    "/root/bad/unknown.pub": "ssh-foo AAAA u@x\n",
    "/root/bad/cert.pub": "ssh-ed25519-cert-v01@openssh.com AAAA c@x\n",
    "/root/bad/options.pub": f'command="/bin/sh" {A}\n',
    "/root/bad/empty.pub": "",
    "/root/bad/bad-name.toml": f'[people.Bob]\nkeys = ["{A}"]\n',
    "/root/bad/bad-key.toml": '[people.ann]\nkeys = ["ssh-ed25519 AAAA"]\n',
    "/root/bad/same-port.toml": f'[people.ann]\nport = 2900\nkeys = ["{A}"]\n'
                                f'[people.ben]\nport = 2900\nkeys = ["{B}"]\n',
    "/root/bad/unknown-table.toml": f'[persons.ann]\nkeys = ["{A}"]\n',
    "/root/bad/syntax.toml": '[people.ann\nkeys = 1\n',
    "/root/bad/good.toml": f'[people.ann]\nkeys = ["{A}"]\n',
    "/root/bad/defaults-not-table.toml": f'defaults = 5\n[people.ann]\nkeys = ["{A}"]\n',
    "/root/bad/empty.toml": "",
    "/root/bad/zone.toml": '[defaults]\npublish_address = "fe80::1%x\\nWORMHOLE_IMAGE=x;id"\n'
                           f'[people.ann]\nkeys = ["{A}"]\n',
    "/root/bad/admin-null.toml": f'[admin]\nuser = "-x"\n[people.ann]\nkeys = ["{A}"]\n',
}
IGNITION = ["ignition", "--admin-key", "/root/bad/a.pub", "--out", "/root/out.ign", "--from"]
CASES = [
    # names
    ("name-upper", ["add", "Bob", "/root/bad/a.pub"], "user name 'Bob' is not allowed"),
    ("name-dash", ["add", "--", "-x", "/root/bad/a.pub"], "user name '-x' is not allowed"),
    ("name-slash", ["add", "a/b", "/root/bad/a.pub"], "user name 'a/b' is not allowed"),
    ("name-dots", ["add", "..", "/root/bad/a.pub"], "user name '..' is not allowed"),
    ("name-space", ["add", "a b", "/root/bad/a.pub"], "user name 'a b' is not allowed"),
    ("name-long", ["add", "a" * 33, "/root/bad/a.pub"], "longer than 32 characters"),
    ("name-reserved", ["add", "root", "/root/bad/a.pub"], "user name 'root' is reserved"),
    # keys
    ("key-private", ["add", "zed", "/root/bad/private"], "is a private key"),
    ("key-dsa", ["add", "zed", "/root/bad/dsa.pub"], "DSA keys are weak"),
    ("key-rsa-short", ["add", "zed", "/root/bad/rsa1024.pub"], "RSA key of 1024 bits is too weak"),
    ("key-truncated", ["add", "zed", "/root/bad/truncated.pub"], "the key data is truncated"),
    ("key-garbage", ["add", "zed", "/root/bad/garbage.pub"], "not valid base64"),
    ("key-type", ["add", "zed", "/root/bad/unknown.pub"], "'ssh-foo' is not a supported key"),
    ("key-cert", ["add", "zed", "/root/bad/cert.pub"], "certificates are not supported"),
    ("key-options", ["add", "zed", "/root/bad/options.pub"], "key options are not supported"),
    ("key-empty", ["add", "zed", "/root/bad/empty.pub"], "holds no public key"),
    ("key-missing", ["add", "zed", "/root/bad/nope.pub"], "cannot read public key file"),
    ("key-twice", ["add", "zed", "/root/bad/a.pub", "/root/bad/a.pub"], "is given twice"),
    ("key-device", ["add", "zed", "/dev/zero"], "not a plain file"),
    ("key-fifo", ["add", "zed", "/root/bad/fifo.pub"], "not a plain file"),
    ("key-folder", ["add", "zed", "/root/bad"], "Is a directory"),
    # ports
    ("port-outside", ["add", "zed", "/root/bad/a.pub", "--port", "80"], "outside the range"),
    ("port-taken", ["add", "zed", "/root/bad/a.pub", "--port", "{abe_port}"], "is taken by abe"),
    ("port-in-use", ["add", "zed", "/root/bad/a.pub", "--port", "2999"], "in use on this host"),
    ("port-word", ["add", "zed", "/root/bad/a.pub", "--port", "abc"], "'abc' is not a valid"),
    # sizes and limits
    ("memory-fraction", ["add", "zed", "/root/bad/a.pub", "--memory", "1.5G"], "not a size"),
    ("memory-small", ["add", "zed", "/root/bad/a.pub", "--memory", "10M"], "outside 64M to 1T"),
    ("memory-huge", ["add", "zed", "/root/bad/a.pub", "--memory", "2T"], "outside 64M to 1T"),
    ("cpus-tiny", ["set", "abe", "--cpus", "0.001"], "is not a number of CPUs"),
    ("cpus-word", ["set", "abe", "--cpus", "lots"], "'lots' is not a valid"),
    ("pids-low", ["set", "abe", "--pids", "5"], "give a whole number from 32"),
    ("pids-high", ["set", "abe", "--pids", "10000000"], "give a whole number from 32"),
    ("set-nothing", ["set", "abe"],
     "give --memory, --disk, --cpus, --pids, --on-demand/--always-on, --idle-stop, --forwarding"),
    ("image-bad", ["add", "zed", "/root/bad/a.pub", "--image", "Not Valid"],
     "is not an image reference"),
    ("image-option", ["add", "zed", "/root/bad/a.pub", "--image=--privileged"],
     "is not an image reference"),
    # people and keys that are not there
    ("remove-unknown", ["remove", "ghost"], "there is no workspace named ghost"),
    ("show-unknown", ["show", "ghost"], "there is no workspace named ghost"),
    ("key-remove-unknown", ["key", "remove", "abe", "SHA256:nope"], "has no key SHA256:nope"),
    ("key-remove-last", ["key", "remove", "abe", "{abe_key}"], "is abe's last key"),
    ("purge-unconfirmed", ["remove", "abe", "--purge"], "add --yes to confirm"),
    # people files for Ignition
    ("people-name", [*IGNITION, "/root/bad/bad-name.toml"], "bad-name.toml:1: [people.Bob]"),
    ("people-key", [*IGNITION, "/root/bad/bad-key.toml"], "bad-key.toml:1: [people.ann]"),
    ("people-port", [*IGNITION, "/root/bad/same-port.toml"],
     "same-port.toml:4: [people.ben]: port 2900 is taken by ann"),
    ("people-table", [*IGNITION, "/root/bad/unknown-table.toml"], "unknown table 'persons'"),
    ("people-syntax", [*IGNITION, "/root/bad/syntax.toml"], "not valid TOML"),
    ("ignition-spec", [*IGNITION, "/root/bad/good.toml", "--spec", "9.9.9"],
     "--spec 9.9.9 is not offered"),
    ("people-defaults", [*IGNITION, "/root/bad/defaults-not-table.toml"], "is not a table"),
    ("people-zone", [*IGNITION, "/root/bad/zone.toml"], "is not an IP address"),
    ("people-admin", [*IGNITION, "/root/bad/admin-null.toml"], "is not a login name"),
    ("people-empty", ["add", "--from", "/root/bad/empty.toml"], "holds no [people.NAME]"),
    ("out-device", ["ignition", "--admin-key", "/root/bad/a.pub", "--out", "/dev/null",
                    "--from", "/root/bad/good.toml"], "--out /dev/null is not a plain file"),
    ("out-folder", ["ignition", "--admin-key", "/root/bad/a.pub", "--out", "/root",
                    "--from", "/root/bad/good.toml"], "is not a plain file"),
    # archives
    ("archive-missing", ["restore", "abe", "/root/bad/none.tar.gz"], "does not exist"),
    ("archive-no-sum", ["restore", "abe", "/root/bad/nosum.tar.gz"], "no checksum file"),
    ("archive-escape", ["restore", "abe", "/root/bad/escape.tar.gz"], "climbs out with '..'"),
    ("archive-unknown-person", ["restore", "ghost", "/root/bad/escape.tar.gz"], "climbs out"),
    ("restore-no-key", ["restore", "ghost"], "there is no repository at that location"),
    # unknown options and commands, wrong combinations
    ("option-unknown", ["add", "--bogus", "zed", "/root/bad/a.pub"], "No such option: --bogus"),
    ("option-typo", ["list", "--jsn"], "No such option: --jsn"),
    ("command-unknown", ["frobnicate"], "No such command 'frobnicate'"),
    ("from-and-name", ["add", "zed", "--from", "/root/bad/bad-name.toml"],
     "--from takes names, keys and limits from the file"),
    ("upgrade-image-alone", ["upgrade", "--image", "wormhole:latest"], "--image needs names"),
    ("internal-no-ip", ["firewall", "--internal"], "--internal needs --wormhole-ip"),
    ("internal-bad-ip", ["firewall", "--internal", "--wormhole-ip", "10.0.0.999"],
     "is not an IP address"),
    ("internal-zone", ["firewall", "--internal", "--wormhole-ip", "fe80::1%x\n-A INPUT"],
     "is not an IP address"),
    ("backup-nobody", ["backup"], "give one or more names, or --all"),
]
CONFIG_CASES = [
    ("config-unknown-key", "colour = 'red'", ["add", "zed", "/root/bad/a.pub"],
     "unknown key 'colour'"),
    ("config-type", "pids = 'many'", ["list"], "pids = 'many' is not allowed; give a whole number"),
    ("config-range", "port_min = 3000\nport_max = 2500", ["add", "zed", "/root/bad/a.pub"],
     "port_min 3000 is above port_max 2500"),
    ("config-egress-cidr", "egress = 'allowlist'\negress_allow = ['10.0.0.0/33:443']",
     ["firewall"], "is not a network and a port"),
    ("config-egress-mode", "egress = 'closed'", ["firewall"], "'closed' is not one of"),
    ("config-zone", "publish_address = 'fe80::1%eth0'", ["add", "zed", "/root/bad/a.pub"],
     "is not an IP address"),
    ("config-schedule", "backup_schedule = 'xyz'", ["add", "zed", "/root/bad/a.pub"],
     "is not a calendar event"),
    ("config-spread", "backup_spread = '99999999999w'", ["add", "zed", "/root/bad/a.pub"],
     "is not a time span"),
    ("config-backup-dir", "backup_dir = '/..'", ["add", "zed", "/root/bad/a.pub"],
     "is not a folder of plain names"),
    ("config-image", "image = '-v/:/host'", ["add", "zed", "/root/bad/a.pub"],
     "is not an image reference"),
    ("config-inner", "port_max = 50000", ["add", "zed", "/root/bad/a.pub"],
     "port_max + inner_offset is above 65535"),
]


def escape_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("hostkeys/ssh_host_ed25519_key", "home/../../etc/evil"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def scene(host, add):
    abe = add("abe")
    for path, text in FILES.items():
        host.put(path, text)
    host.exec("ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", "/root/bad/rsa1024")
    host.exec("mkfifo", "/root/bad/fifo.pub")
    host.exec("sh", "-c", "cat > /root/bad/escape.tar.gz", input=escape_archive())
    host.sh("cd /root/bad && sha256sum escape.tar.gz > escape.tar.gz.sha256 && "
            "cp escape.tar.gz nosum.tar.gz")
    host.sh("setsid python3 -c 'import socket,time; s=socket.create_server((\"\", 2999)); "
            "time.sleep(3600)' </dev/null >/dev/null 2>&1 &")
    fingerprint = host.unitgen("key", "list", "abe").stdout.split()[0]
    yield {"abe_port": str(abe.port), "abe_key": fingerprint}
    host.sh("pkill -f '[c]reate_server' || true")


def refused(host, args: list[str], message: str) -> None:
    done = host.unitgen(*args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("unitgen: error: ")
    assert message in lines[0] and "; " in lines[0], lines[0]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(host, scene, args, message):
    before = host.sh(STATE).stdout
    refused(host, [a.format(**scene) for a in args], message)
    assert host.sh(STATE).stdout == before


@pytest.mark.parametrize(("line", "args", "message"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_is_refused_and_changes_nothing(host, scene, line, args, message):
    host.sh("cp -p /etc/wormhole/wormhole.toml /root/wormhole.toml.good")
    for key in [part.split("=")[0].strip() for part in line.splitlines()]:
        host.sh(f"sed -i '/^{key} /d' /etc/wormhole/wormhole.toml")
    host.sh(f"printf '%s\\n' \"{line}\" >> /etc/wormhole/wormhole.toml")
    try:
        before = host.sh(STATE).stdout
        refused(host, args, message)
        assert host.sh(STATE).stdout == before
    finally:
        host.sh("cp -p /root/wormhole.toml.good /etc/wormhole/wormhole.toml")


def test_the_table_is_at_least_forty_cases():
    assert len(CASES) + len(CONFIG_CASES) >= 40


STATE_FILES = "/etc/wormhole/generated.json /etc/wormhole/wormhole.toml"


@pytest.mark.parametrize(("damage", "message"), [
    ("printf '\\377\\376' > /etc/wormhole/generated.json", "is not UTF-8 text"),
    ("echo '[1]' > /etc/wormhole/generated.json", "generated.json is damaged"),
    ("echo 'x = [' > /etc/wormhole/wormhole.toml", "not valid TOML"),
    ("rm /etc/wormhole/wormhole.toml && mkdir /etc/wormhole/wormhole.toml", "is not a plain file"),
])
def test_a_damaged_state_file_is_one_line_and_changes_nothing(host, scene, damage, message):
    host.sh(f"mkdir -p /root/state && cp -p {STATE_FILES} /root/state/")
    try:
        host.sh(damage)
        before = host.sh(STATE).stdout
        refused(host, ["add", "zed", "/root/bad/a.pub"], message)
        assert host.sh(STATE).stdout == before
    finally:
        host.sh("rm -rf /etc/wormhole/wormhole.toml && cp -p /root/state/* /etc/wormhole/")


@pytest.mark.parametrize("linked", ["/etc/wormhole/keys/abe", "/etc/wormhole/env"])
def test_a_link_under_unitgens_folders_is_never_followed(host, scene, linked):
    host.sh(f"mkdir -p /root/elsewhere && echo keep > /root/elsewhere/precious && "
            f"mv {linked} /root/moved && ln -s /root/elsewhere {linked}")
    try:
        before = host.sh(STATE + "; find /root/elsewhere -printf '%p %s\\n'").stdout
        for args in (["key", "add", "abe", "/root/bad/b.pub"], ["add", "zed", "/root/bad/b.pub"],
                     ["remove", "abe", "--no-backup"]):
            refused(host, args, f"{linked} is a symbolic link")
        assert host.sh(STATE + "; find /root/elsewhere -printf '%p %s\\n'").stdout == before
    finally:
        host.sh(f"rm {linked} && mv /root/moved {linked} && rm -rf /root/elsewhere")


def test_a_manifest_entry_outside_unitgens_paths_is_never_touched(host, scene):
    fstab = host.sh("cat /etc/fstab; stat -c %Y /etc/fstab").stdout
    host.sh("""python3 -c 'import json; p="/etc/wormhole/generated.json"; m=json.load(open(p)); \
m["/etc/fstab"]="sha256:0:644"; m["/../../root/bad/good.toml"]="x"; json.dump(m, open(p, "w"))'""")
    host.unitgen("add", "zed", "/root/bad/b.pub")
    try:
        assert host.sh("cat /etc/fstab; stat -c %Y /etc/fstab").stdout == fstab
        assert host.exec("test", "-f", "/root/bad/good.toml", check=False).returncode == 0
    finally:
        host.unitgen("remove", "zed", "--no-backup")


def test_remove_without_a_manifest_removes_the_person_as_registered(host, scene, add):
    add("yve")
    host.sh("mv /etc/wormhole/generated.json /root/generated.json.saved")
    done = host.unitgen("remove", "yve", "--no-backup")
    assert done.stdout.splitlines()[0] == "removed yve"
    assert "yve" not in host.unitgen("list").stdout
    assert host.unit("wormhole@yve.service", "UnitFileState")["UnitFileState"] != "enabled"
    assert host.exec("test", "-e", "/etc/wormhole/env/yve.env", check=False).returncode == 1
    assert host.unit("wormhole@yve.service", "ActiveState")["ActiveState"] == "inactive"
