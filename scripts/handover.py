#!/usr/bin/env python3
"""The load test's `handover` mode: how waiting for a lock compares with
flock(1) on the same patterns, in one run on one machine.

  handover.py --namaste PATH --port PORT --log FILE [--runs N] [--seconds S]

PORT is a running `namaste run --log-level debug` whose standard error goes
to FILE. Rows, each for `hold --wait` and for `flock -w`:

  single     `hold NAME -- true` against `flock -n FILE true`, whole run
  handover   a holder's command ends; time until the waiter's command starts
             (both include starting a shell), median and max over N runs
  crash      the holder's whole process tree is killed with SIGKILL; time
             until the waiter's command starts
  order      6 waiters arriving 100 ms apart: the order they were served in
  requests   8 waiters on a lock held for S seconds: requests and holder
             verifications the server saw (ours only)
  readers    a writer queued behind a stream of 12 shared holders (0.4 s
             each, one every 0.15 s; `hold --shared` against `flock -s`):
             time from the writer's arrival until its command starts

Prints one `key=value` line per row; exits 1 when a waiter was not served or
ours served waiters out of arrival order. Loopback only; ends by itself.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PATIENCE = "30"  # seconds a waiter may wait; every run ends well before


def holders(namaste, port, lock, name):
    """Command prefixes that hold a lock: ours and flock's."""
    return {
        "ours": lambda *options: [namaste, "hold", name, "--port", str(port), *options, "--"],
        "flock": lambda *options: ["flock", *(options or ["-n"]), lock],
    }


def wait_options(tool):
    return ["--wait", PATIENCE] if tool == "ours" else ["-w", PATIENCE]


def stamp(path):
    """A shell command that writes the time in nanoseconds to `path`."""
    return ["sh", "-c", f"date +%s%N > {path}"]


def read_ns(path, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"nothing written to {path}")


def single(hold, tool, runs):
    """One whole `hold NAME -- true` or `flock -n FILE true`, in ms."""
    times = []
    for _ in range(runs):
        started = time.monotonic_ns()
        subprocess.run(hold[tool]() + ["true"], check=True)
        times.append((time.monotonic_ns() - started) / 1e6)
    return times


def handover(hold, tool, tmp, runs):
    """Holder's command ends -> waiter's command starts, in ms."""
    gaps = []
    for run in range(runs):
        end, start = f"{tmp}/end{run}", f"{tmp}/start{run}"
        holder = subprocess.Popen(hold[tool]() + ["sh", "-c", f"sleep 0.3; date +%s%N > {end}"])
        time.sleep(0.1)
        waiter = subprocess.Popen(hold[tool](*wait_options(tool)) + stamp(start))
        holder.wait()
        waiter.wait()
        gaps.append((read_ns(start) - read_ns(end)) / 1e6)
    return gaps


def crash(hold, tool, tmp, runs):
    """Holder's tree killed -> waiter's command starts, in ms."""
    gaps = []
    for run in range(runs):
        start = f"{tmp}/crash{run}"
        holder = subprocess.Popen(hold[tool]() + ["sleep", "60"], start_new_session=True)
        time.sleep(0.2)
        waiter = subprocess.Popen(hold[tool](*wait_options(tool)) + stamp(start))
        time.sleep(0.3)
        killed = time.time_ns()
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        waiter.wait()
        gaps.append((read_ns(start) - killed) / 1e6)
    return gaps


def order(hold, tool, tmp):
    """The order in which 6 waiters, arriving 100 ms apart, were served."""
    served = f"{tmp}/order-{tool}"
    holder = subprocess.Popen(hold[tool]() + ["sleep", "0.8"])
    time.sleep(0.1)
    waiters = []
    for n in range(1, 7):
        command = ["sh", "-c", f"echo {n} >> {served}; sleep 0.02"]
        waiters.append(subprocess.Popen(hold[tool](*wait_options(tool)) + command))
        time.sleep(0.1)
    holder.wait()
    for waiter in waiters:
        waiter.wait()
    with open(served) as f:
        return [int(line) for line in f.read().split()]


def requests(hold, log, seconds):
    """Requests and verifications the server saw while 8 waited `seconds`."""
    before = log_counts(log)
    holder = subprocess.Popen(hold["ours"]() + ["sleep", str(seconds)])
    time.sleep(0.1)
    waiters = [subprocess.Popen(hold["ours"](*wait_options("ours")) + ["true"]) for _ in range(8)]
    holder.wait()
    for waiter in waiters:
        waiter.wait()
    after = log_counts(log)
    return {key: after[key] - before[key] for key in after}


def readers(hold, tool, tmp, runs):
    """A writer arriving behind a stream of readers -> its command starts, in ms."""
    shared = ["--shared", "--wait", PATIENCE] if tool == "ours" else ["-s", "-w", PATIENCE]
    waits = []
    for run in range(runs):
        start = f"{tmp}/writer-{tool}{run}"
        stream = [subprocess.Popen(hold[tool](*shared) + ["sleep", "0.4"])]
        time.sleep(0.15)
        arrived = time.time_ns()
        writer = subprocess.Popen(hold[tool](*wait_options(tool)) + stamp(start))
        for _ in range(11):
            time.sleep(0.15)
            stream.append(subprocess.Popen(hold[tool](*shared) + ["sleep", "0.4"]))
        writer.wait()
        for reader in stream:
            reader.wait()
        waits.append((read_ns(start) - arrived) / 1e6)
    return waits


def log_counts(log):
    with open(log) as f:
        lines = f.read().splitlines()
    return {
        "waits": sum(": wait " in line and ": queued" in line for line in lines),
        "books": sum(": book " in line for line in lines),
        "verifications": sum("verified the process behind" in line for line in lines),
    }


def ms(values):
    return f"median_ms={statistics.median(values):.1f} max_ms={max(values):.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namaste", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--log", required=True)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="namaste-handover-") as tmp:
        hold = holders(args.namaste, args.port, f"{tmp}/flock.lock", "handover-test")
        for tool in ("ours", "flock"):
            print(f"row=single tool={tool} runs={4 * args.runs} {ms(single(hold, tool, 4 * args.runs))}")
        for tool in ("ours", "flock"):
            print(f"row=handover tool={tool} runs={args.runs} {ms(handover(hold, tool, tmp, args.runs))}")
        crash_runs = max(2, args.runs // 2)
        for tool in ("ours", "flock"):
            print(f"row=crash tool={tool} runs={crash_runs} {ms(crash(hold, tool, tmp, crash_runs))}")
        for tool in ("ours", "flock"):
            served = order(hold, tool, tmp)
            in_order = served == sorted(served) and len(served) == 6
            print(f"row=order tool={tool} served={','.join(map(str, served))} in_order={in_order}")
            failed |= tool == "ours" and not in_order
        readers_runs = max(2, args.runs // 4)
        for tool in ("ours", "flock"):
            print(f"row=readers tool={tool} runs={readers_runs} {ms(readers(hold, tool, tmp, readers_runs))}")
        seen = requests(hold, args.log, args.seconds)
        print(f"row=requests tool=ours waiters=8 seconds={args.seconds:g} "
              + " ".join(f"{key}={value}" for key, value in seen.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
