"""The key service's socket folders do not pile up: one per home that ever ran one."""

import os
import time

from tre.keyservice.process import sweep_empty_socket_folders


def test_only_folders_that_are_empty_and_old_are_swept(tmp_path):
    old = time.time() - 3600
    ended = tmp_path / "ended"  # a service that exited: its socket gone, its folder left
    ended.mkdir()
    starting = tmp_path / "starting"  # just made: its service binds in a moment
    starting.mkdir()
    running = tmp_path / "running"  # a service's socket in it
    running.mkdir()
    (running / "keys.sock").write_text("")
    for folder in (ended, running):
        os.utime(folder, (old, old))
    assert sweep_empty_socket_folders(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running", "starting"]
    assert sweep_empty_socket_folders(tmp_path / "missing") == 0
