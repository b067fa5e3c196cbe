"""Starts `tailor serve` on a free loopback port for the script-driven server tests, and stops it."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import requests


class ServerProc:
    def __init__(self, tailor_bin, model_dir, extra_args=(), env=None):
        self.tmp = tempfile.mkdtemp(prefix="tailor-srv-")
        self.port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "server.log")
        args = [tailor_bin, "serve", "--demo", "--demo-dir", model_dir, "--port", "0",
                "--port-file", self.port_file, "--device", "cpu", *extra_args]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while not os.path.exists(self.port_file) or not open(self.port_file).read().strip():
            if self.proc.poll() is not None:
                raise RuntimeError("tailor serve exited early:\n" + self.logs())
            if time.time() > deadline:
                raise RuntimeError("tailor serve did not start in 120 s:\n" + self.logs())
            time.sleep(0.05)
        self.port = int(open(self.port_file).read().strip())
        self.url = f"http://127.0.0.1:{self.port}"
        self.model = requests.get(self.url + "/v1/models", timeout=10).json()["data"][0]["id"]

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def metric(self, series):
        text = requests.get(self.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        raise KeyError(series)

    def stop(self):
        """SIGTERM, then the exit code (the server must stop cleanly)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("tailor serve did not stop within 30 s of SIGTERM")
        self.log.close()
        return self.proc.returncode


def args_or_die():
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} TAILOR_BIN MODEL_CACHE_DIR [SOURCE_DIR]")
    return sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
