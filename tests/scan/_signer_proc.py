"""Run as a separate process by test_signing: `python -m tests.scan._signer_proc KEY_FILE
READY_FILE GO_FILE`. Imports everything, says it is ready, waits for the go file (all the
processes start together), loads (or generates) the development signing key from
KEY_FILE and prints the public key it ended up with."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from amphi.signing import load_signer


def main(key_file: str, ready: str, go: str) -> None:
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            sys.exit("never told to go")
        time.sleep(0.001)
    print(load_signer("", key_file).public_key_b64())


if __name__ == "__main__":
    main(*sys.argv[1:4])
