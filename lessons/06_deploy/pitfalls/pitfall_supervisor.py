"""P39, broken: a supervisor that stops its servers on Ctrl-C only."""

import signal
import subprocess
import sys
import time

INSTANCES = 2
SERVER = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"]


def main() -> None:
    children = [
        subprocess.Popen(SERVER, stdout=subprocess.DEVNULL, start_new_session=True)
        for _ in range(INSTANCES)
    ]
    try:
        print("servers:", *(child.pid for child in children), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
            child.wait()
        print("servers stopped", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
