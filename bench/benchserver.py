"""Shared by the benchmark scripts: start a numcheck server on a free loopback port with a
fresh data folder, read the first-start admin key, and read a process's peak RSS."""
import os, socket, subprocess, sys, time, urllib.request


def start(binary, data_dir, env=None):
    """Starts `numcheck serve`; returns (process, base URL, admin key). The data folder must
    not hold keys yet, so that the server prints its first admin key."""
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    srv = subprocess.Popen([binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           env=dict(os.environ, NUMCHECK_LOG="warn",
                                    # Benchmarks poll hard with one key: no per-key limits.
                                    NUMCHECK_LIMITS__REQUESTS_PER_SECOND="0",
                                    NUMCHECK_LIMITS__MAX_OPEN_TASKS="0", **(env or {})))
    key = admin_key(srv, "server")
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    return srv, base, key


def admin_key(proc, name):
    """The first admin key a starting `numcheck serve` prints on its stdout (a pipe); exits
    the script, naming the process, when it ends first."""
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"{name} exited")
        if line.startswith("nck_"):
            return line.strip()


def stop(proc, timeout):
    """Terminates a process, and kills it when it has not ended after `timeout` seconds."""
    proc.terminate()
    wait_or_kill(proc, timeout)


def wait_or_kill(proc, timeout):
    """Waits for a terminated process; kills it when it has not ended after `timeout` seconds."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def finish(proc, timeout):
    """Ends a measured server: its peak RSS in KiB, read before it is terminated and waited
    for (at most `timeout` seconds)."""
    peak = peak_rss_kib(proc.pid)
    proc.terminate()
    proc.wait(timeout=timeout)
    return peak


def peak_rss_kib(pid):
    """VmHWM of a running process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next((int(l.split()[1]) for l in f if l.startswith("VmHWM:")), 0)
