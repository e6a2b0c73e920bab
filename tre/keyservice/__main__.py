"""`python -m tre.keyservice`: run a key service in the foreground.

It is told everything on its command line, because under its own OS user it cannot
enter TRE_HOME (0700, the TRE's): the TRE opens the key store and the service's state
folder and hands them over as open descriptors (`--keys-fd`, `--state-fd`, reached as
/proc/self/fd/N), and the HSM's PIN file the same way. So the service reaches exactly
those folders and nothing else of the home.

It exits on SIGTERM, and by itself once its key store is deleted (a removed test or
demo home leaves no process behind).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tre.errors import TreError
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import KINDS, KmsSettings
from tre.keyservice.process import Lock
from tre.keyservice.server import KeyService, serve

log = logging.getLogger("tre.keyservice")
HOME_CHECK_SECONDS = 2.0


def _fd_path(fd: int) -> Path:
    return Path(f"/proc/self/fd/{fd}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tre.keyservice")
    parser.add_argument("--keys-fd", type=int, required=True, help="the key store, open")
    parser.add_argument("--state-fd", type=int, required=True, help="its state folder, open")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--kms", choices=KINDS, default="local")
    parser.add_argument("--pkcs11-module", default="")
    parser.add_argument("--pkcs11-token", default="")
    parser.add_argument("--pkcs11-pin-fd", type=int, default=None)
    parser.add_argument("--admin-uid", type=int, action="append", default=[])
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=0,
        help="stop after this many seconds without a request (0: never); tre starts it "
        "again when it is needed",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    keys_root = _fd_path(args.keys_fd)
    state = _fd_path(args.state_fd)
    settings = KmsSettings(
        kind=args.kms,
        keys_root=str(keys_root),
        pkcs11_module=args.pkcs11_module,
        pkcs11_token=args.pkcs11_token,
        pkcs11_pin_file=f"fd:{args.pkcs11_pin_fd}" if args.pkcs11_pin_fd else "",
    )
    try:
        with Lock(state):
            keys = open_master_keys(settings)
            keys.key_ids()  # fail now, not at the first job, if the keys cannot be used
            service = KeyService(keys, keys_root, {0, *args.admin_uid})
            (state / "pid").write_text(str(os.getpid()))
            watcher = threading.Thread(
                target=_watch, args=(args.keys_fd, service, args.idle_exit, stop), daemon=True
            )
            watcher.start()
            log.info("key service (%s keys) listening at %s", settings.kind, args.socket)
            serve(service, args.socket, stop)
            log.info("key service stopped")
    except TreError as exc:
        log.error("key service cannot run: %s", exc.render())
        return 1
    return 0


def _watch(keys_fd: int, service: KeyService, idle: float, stop: threading.Event) -> None:
    """Stop once the key store folder is deleted (its link count drops to 0), or after
    `idle` seconds without a request."""
    while not stop.wait(HOME_CHECK_SECONDS):
        if os.fstat(keys_fd).st_nlink == 0:
            log.info("the key store is gone; stopping")
            stop.set()
        elif idle and time.monotonic() - service.last_request > idle:
            log.info("no request for %.0fs; stopping (tre starts it again when needed)", idle)
            stop.set()


if __name__ == "__main__":
    sys.exit(main())
