"""The demo: one person's workspace on a real systemd host, from `unitgen add` to an ssh login."""

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.lab.host import Host, build_wheels, build_workspace_image, ssh_args, wait_ssh

NAME = "wormhole-demo"
PERSON = "jumanjiman"
KEYS = Path("/var/tmp/wormhole-lab/demo")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def on_host(host: Host, command: str) -> None:
    print(f"{NAME}# {command}", flush=True)
    done = host.sh(f"cd /root && {command}", check=False)
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode:
        sys.exit(f"demo: `{command}` failed with status {done.returncode}")


def main() -> None:
    step("building the workspace image: unitgen image build")
    build_workspace_image()
    step(f"booting a systemd + Docker host in a container: {NAME}")
    host = Host.start(NAME)
    with tempfile.TemporaryDirectory() as wheels:
        host.install_unitgen(build_wheels(Path(wheels)))
    host.load_image()
    KEYS.mkdir(parents=True, exist_ok=True)
    key = KEYS / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", PERSON,
                        "-f", str(key)], check=True)
    host.put(f"/root/{PERSON}.pub", key.with_suffix(".pub").read_text())

    step(f"on the host, as its admin: add {PERSON} and start the workspace")
    on_host(host, f"unitgen add {PERSON} {PERSON}.pub && systemctl start wormhole@{PERSON}")
    on_host(host, f"unitgen show {PERSON}")

    port = json.loads(host.exec("unitgen", "show", PERSON, "--json").stdout)["port"]
    step(f"as {PERSON}, from outside the host: ssh -p {port} user@{host.ip} id")
    done = wait_ssh(host.ip, port, key)
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode:
        sys.exit("demo: the ssh login failed")

    step("the host keeps running; to look around:")
    print(f"  {shlex.join(ssh_args(host.ip, port, key))}")
    print(f"  docker exec -it {NAME} bash      # the host: unitgen list, systemctl status ...")
    print(f"  docker rm -f {NAME} && docker volume rm {NAME}-docker   # remove it")


if __name__ == "__main__":
    main()
