"""The program `tre cluster check` runs on a compute node, in a tiny Slurm job: it says
what the node has (Python and tre's stack, interfaces, scratch, bubblewrap) and what it
reaches (the key gateway, slurm-cluster's scheduler port, an address outside the
cluster), as one line `TRE-PROBE {json}` that slurm/check.py reads. It is plain Python
with no import of tre (the node's interpreter may lack it: that is one of the checks).
Arguments: scratch folder, key gateway HOST:PORT, outside HOST:PORT, scheduler
HOST:PORT ('' for none).
"""

PROBE = r"""
import json, os, sys, tempfile
import pwd
found = {"python": sys.version.split()[0], "user": pwd.getpwuid(os.getuid()).pw_name}
try:
    import tre, jobs, slurm, disclosure, dask_jobqueue, distributed, pyarrow, polars
    found["imports"] = "ok"
except Exception as exc:
    found["imports"] = f"{type(exc).__name__}: {exc}"
import psutil
found["interfaces"] = sorted(psutil.net_if_addrs())
scratch = os.path.expandvars(sys.argv[1])
try:
    os.makedirs(scratch, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch):
        pass
    found["scratch"] = "ok"
except OSError as exc:
    found["scratch"] = f"{scratch}: {exc.strerror}"
import shutil, socket, subprocess, time
def reach(host, port, seconds):
    started = time.monotonic()
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
        return "connected"
    except OSError as exc:
        return f"{type(exc).__name__} after {time.monotonic() - started:.1f}s"
gateway = sys.argv[2] if len(sys.argv) > 2 else ""
if gateway:
    found["gateway"] = reach(*gateway.rsplit(":", 1), 5)
outside = sys.argv[3] if len(sys.argv) > 3 else ""
if outside:
    found["outside"] = reach(*outside.rsplit(":", 1), 3)
scheduler = sys.argv[4] if len(sys.argv) > 4 else ""
if scheduler:
    found["scheduler"] = reach(*scheduler.rsplit(":", 1), 5)
bwrap = shutil.which("bwrap")
if bwrap is None:
    found["sandbox"] = "bwrap is not installed"
else:
    done = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "/bin/true"],
        capture_output=True, text=True,
    )
    found["sandbox"] = "ok" if done.returncode == 0 else done.stderr.strip()[-200:]
print("TRE-PROBE " + json.dumps(found))
"""
