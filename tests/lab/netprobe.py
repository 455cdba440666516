"""Copied into the lab host: `listen ADDR PORT...` accepts and closes connections forever;
`connect ADDR PORT [SOURCE]` prints 'open' or 'closed' (3 s timeout)."""

import socket
import sys
import threading


def listen(address: str, port: int) -> None:
    server = socket.create_server((address, port), family=socket.AF_INET, reuse_port=True)
    while True:
        conn, _ = server.accept()
        conn.close()


def connect(address: str, port: int, source: str | None) -> str:
    try:
        with socket.create_connection((address, port), timeout=3,
                                      source_address=(source, 0) if source else None):
            return "open"
    except OSError:
        return "closed"


if sys.argv[1] == "listen":
    for number in sys.argv[3:]:
        threading.Thread(target=listen, args=(sys.argv[2], int(number))).start()
else:
    print(connect(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
