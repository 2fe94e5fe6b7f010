#!/usr/bin/env python3
"""The report of scripts/load-test: the table of its rows, then the notes.

    scripts/load-report.py RESULTS [HANDOVER]

RESULTS holds one line of key=value fields per row (`mode=idle` lines are
the idle server's memory at each start); HANDOVER, if given and not empty,
the rows of the handover mode. In a file of its own so that a test can
check it without a load run: a run whose modes made no row of load (only
`handover`, say) prints no table, not a header over nothing.
"""
import sys


def fields(path):
    """The key=value lines of `path`, one dict each."""
    with open(path) as lines:
        return [dict(field.split("=", 1) for field in line.split()) for line in lines if line.strip()]


def table(runs):
    """The table's lines for `runs`; none when there are no runs."""
    if not runs:
        return []
    cols = ["mode", "server", "rate", "p50_us", "p90_us", "p99_us", "max_us",
            "errors", "wrong", "violations", "cpu_us_per_cycle", "rss_end_kib"]
    head = ["mode", "server", "cycles/s", "p50 µs", "p90 µs", "p99 µs", "max µs",
            "errors", "wrong", "violations", "CPU µs/cycle", "RSS KiB"]
    table = [head] + [[r.get(c, "-") for c in cols] for r in runs]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]


def summary(rows):
    """Prints the table and the notes on the load rows."""
    idle = {}
    for r in rows:
        if r["mode"] == "idle":
            idle.setdefault(r["server"], []).append(int(r["rss_kib"]))
    runs = [r for r in rows if r["mode"] != "idle"]
    for line in table(runs):
        print(line)
    if runs:
        print()
    for server, kibs in idle.items():
        starts = "1 start" if len(kibs) == 1 else f"{len(kibs)} starts"
        print(f"idle resident memory, {server}: {min(kibs)} to {max(kibs)} KiB over {starts}")
    for r in runs:
        if r["mode"] == "memory":
            print(f"memory, {r['server']}: {r['bytes_per_booking']} bytes per booking at "
                  f"{r['bookings']} bookings; {r['rss_settled_kib']} KiB resident once all "
                  f"checked out and settled")
        if r["mode"] == "unique":
            print(f"unique, {r['server']}: resident {r['rss_start_kib']} KiB before, "
                  f"{r['rss_settled_kib']} KiB settled after")
        if r["mode"] in ("shared", "slots"):
            print(f"{r['mode']}, {r['server']}: {r['rate']} grants/s, slots {r['slots']}, "
                  f"at most {r['most_at_once']} holders at once")
        if r["mode"] == "race":
            print(f"race, {r['server']}: {r['rate']} rounds/s of {r['contenders']} contenders, "
                  f"{r['violations']} rounds with two or more grants")
    ours = {r["mode"]: r for r in runs if r["server"] == "ours"}
    theirs = {r["mode"]: r for r in runs if r["server"] == "0.6.0"}
    def ratio(a, b):
        try:
            return f"{float(a) / float(b):.2f}x"
        except (ValueError, ZeroDivisionError):
            return "-"
    if theirs:
        print()
        print("ours / 0.6.0:")
        for mode in ours:
            if mode in theirs:
                o, t = ours[mode], theirs[mode]
                print(f"  {mode}: cycles/s {ratio(o['rate'], t['rate'])}, "
                      f"p99 {ratio(o['p99_us'], t['p99_us'])}, "
                      f"CPU per cycle {ratio(o['cpu_us_per_cycle'], t['cpu_us_per_cycle'])}")
    if "unique" in ours and "lines" in ours:
        print(f"lines / unique, ours: cycles/s {ratio(ours['lines']['rate'], ours['unique']['rate'])}, "
              f"CPU per cycle {ratio(ours['lines']['cpu_us_per_cycle'], ours['unique']['cpu_us_per_cycle'])}")
    if "unique" in ours and "hostile" in ours:
        print(f"hostile / unique, ours: {ratio(ours['hostile']['rate'], ours['unique']['rate'])}")
    if "status" in ours and "query" in ours:
        try:
            extra = float(ours["query"]["cpu_us_per_cycle"]) - float(ours["status"]["cpu_us_per_cycle"])
            print(f"query - status, ours: {extra:+.1f} CPU µs per request (the look-up of the holder's OS user)")
        except ValueError:
            pass


def handover(path):
    """Prints the handover mode's rows, if it ran."""
    rows = fields(path)
    if not rows:
        return
    print()
    print("Waiting for a lock: ours (hold --wait) beside flock -w; times in ms")
    for r in rows:
        row, tool = r.pop("row"), r.pop("tool")
        print(f"{row:>9} {tool:>6}  " + "  ".join(f"{k} {v}" for k, v in r.items()))


if __name__ == "__main__":
    summary(fields(sys.argv[1]))
    if len(sys.argv) > 2:
        handover(sys.argv[2])
