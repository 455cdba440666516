"""Copied into the lab host: `flood hold|churn ADDR PORT SECONDS WORKERS` opens connections
from one source as fast as it can, for SECONDS at most, and prints what it made.
hold: each worker keeps a connection open and silent, as a slow client does, and opens
another as soon as the server closes it; churn: each worker connects, reads the banner and
closes, again and again."""

import socket
import sys
import threading
import time

mode, address, port, seconds, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    float(sys.argv[4]), int(sys.argv[5])
end = time.monotonic() + seconds
made = [0] * workers


def worker(number: int) -> None:
    while time.monotonic() < end:
        try:
            conn = socket.create_connection((address, port), timeout=5)
        except OSError:
            time.sleep(0.05)
            continue
        made[number] += 1
        with conn:
            conn.settimeout(max(0.1, end - time.monotonic()))
            try:
                while conn.recv(256) and mode == "hold" and time.monotonic() < end:
                    pass
            except OSError:
                pass


threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sum(made))
