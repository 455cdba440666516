"""Whether a workspace answers: a TCP connection to its port and sshd's banner."""

import socket
import time


def ssh_banner(address: str, port: int, timeout: float) -> bool:
    """True once sshd on address:port greets with 'SSH-2.0-' within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=5) as conn:
                conn.settimeout(5)
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False
