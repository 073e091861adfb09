#!/usr/bin/env python3
"""The benchmark suite, in one run on one machine: Passerelle, the physical limit, the reference stack.

    bench/run.py [--scale small|medium|big] [--runs 3] [--no-reference] [--target mariadb|mysql]

1. Loads the airline dataset at the scale into the source database bench_<scale> (once; kept).
2. Passerelle: `passerelle migrate` end to end into bench_passerelle, --runs times; per phase wall time,
   rows/s, MB/s, peak RSS of passerelle, and the CPU seconds of passerelle, Kafka, PostgreSQL and
   MariaDB during the run.
3. The physical limit: bench/direct.sh (COPY piped into LOAD DATA with the same DDL, no Kafka), --runs times.
4. The reference stack: bench/reference.sh (Kafka Connect with Debezium's PostgreSQL source and JDBC
   sink), once: it is slow.

Prints the medians and the ratios Passerelle / limit and reference / Passerelle as JSON on stdout.
Everything goes to the local stack (stack/stack.sh up first).

With --target mysql the target is a private MySQL 9.7 (stack/stack.sh service-up mysql on port 53327, data in
/var/tmp/passerelle-bench-mysql, from the stack's installed root), whose local_infile this script
switches (Passerelle never does; the stack's own MySQL keeps MySQL's defaults for the tests):
Passerelle with local_infile OFF (it loads by multi-row INSERT) and ON (LOAD DATA), then the limit with
it ON, --runs times each, no reference. The ratios compare each to the limit and INSERT to LOAD DATA.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/passerelle/target"))
BIN = TARGET_DIR / "release"
BENCH_MYSQL_PORT = 53327
BENCH_MYSQL_DIR = Path(os.environ.get("PASSERELLE_BENCH_MYSQL_DIR", "/var/tmp/passerelle-bench-mysql"))


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def stack_env():
    exports = subprocess.run([ROOT / "stack/stack.sh", "env"], check=True, capture_output=True, text=True).stdout
    env = dict(os.environ)
    for line in exports.splitlines():
        if not line.startswith("export "):
            continue  # `unset PASSERELLE_MYSQL_UNAVAILABLE` when MySQL is there
        name, value = line.removeprefix("export ").split("=", 1)
        env[name] = value.strip("'")
    return env


def with_database(url, database):
    head, _, _ = url.rpartition("/")
    return f"{head}/{database}"


def with_port(url, port):
    """`mysql://user:password@host:PORT/db` with another port."""
    head, _, tail = url.rpartition(":")
    return f"{head}:{port}/{tail.split('/', 1)[1]}"


class Target:
    """Where the migrations go: the stack's MariaDB, or the bench's private MySQL."""

    def __init__(self, kind, env):
        self.kind = kind
        if kind == "mariadb":
            self.url, self.stack_env = env["PASSERELLE_TARGET"], env
        else:
            self.url = with_port(env["PASSERELLE_TARGET_MYSQL"], BENCH_MYSQL_PORT)
            self.stack_env = {**env, "PASSERELLE_STACK_DIR": str(BENCH_MYSQL_DIR),
                              "PASSERELLE_MYSQL_PORT": str(BENCH_MYSQL_PORT)}

    def start(self):
        if self.kind == "mysql":
            run([ROOT / "stack/stack.sh", "service-up", "mysql"], self.stack_env, capture=False)

    def stop(self):
        if self.kind == "mysql":
            run([ROOT / "stack/stack.sh", "mysql-down"], self.stack_env, capture=False)

    def recreate(self, database):
        run([ROOT / "stack/stack.sh", "recreate-target-db", database, self.kind], self.stack_env)

    def set_local_infile(self, on):
        """The benchmark's own server only: Passerelle itself never changes it."""
        assert self.kind == "mysql"
        value = "ON" if on else "OFF"
        run([ROOT / "stack/stack.sh", "mysql-sql", "-e", f"SET GLOBAL local_infile = {value}"], self.stack_env)

    def pid_file(self):
        if self.kind == "mysql":
            return BENCH_MYSQL_DIR / "mysql/mysqld.pid"
        stack_dir = Path(os.environ.get("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack"))
        return stack_dir / "mariadb/mariadbd.pid"


def run(command, env, capture=True):
    """Runs `command`; returns its stdout, or shows its output on stderr when not `capture`d."""
    log("$ " + " ".join(str(part) for part in command))
    if capture:
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    else:
        result = subprocess.run(command, env=env, stdout=sys.stderr, text=True)
    if result.returncode != 0:
        sys.stderr.write((result.stderr or "")[-4000:])
        raise SystemExit(f"bench: {command[0]} failed with exit code {result.returncode}")
    return result.stdout


def process_cpu(target):
    """CPU seconds so far of Kafka, PostgreSQL (postmaster and its reaped backends) and the target."""
    stack_dir = Path(os.environ.get("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack"))
    pids = {
        "kafka": (stack_dir / "kafka/kafka.pid"),
        target.kind: target.pid_file(),
        # A source cluster of its own (stack.sh service-up postgres with a PASSERELLE_STACK_DIR and
        # PASSERELLE_PG_PORT of its own) is found through PASSERELLE_BENCH_PG_DIR, that directory.
        "postgresql": (Path(os.environ.get("PASSERELLE_BENCH_PG_DIR", stack_dir)) / "pg/data/postmaster.pid"),
    }
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for name, pid_file in pids.items():
        try:
            pid = pid_file.read_text().split()[0]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, and the children's it has reaped (PostgreSQL's backends).
            cpu[name] = sum(int(value) for value in fields[11:15]) / ticks
        except (OSError, IndexError, ValueError):
            cpu[name] = None
    return cpu


def cpu_delta(before, after):
    return {
        name: (round(after[name] - before[name], 1) if after[name] is not None and before[name] is not None else None)
        for name in before
    }


def median(values):
    values = [value for value in values if value is not None]
    return round(statistics.median(values), 2) if values else None


def load_dataset(scale, env):
    database = f"bench_{scale}"
    admin = env["PASSERELLE_SOURCE_ADMIN"]
    exists = subprocess.run(
        ["psql", "-XAtc", f"select 1 from pg_database where datname = '{database}'", admin],
        capture_output=True, text=True, env=env,
    ).stdout.strip()
    source = with_database(env["PASSERELLE_SOURCE"], database)
    if exists:
        loaded = subprocess.run(
            ["psql", "-XAtc", "select count(*) from bookings.ticket_flights", source],
            capture_output=True, text=True, env=env,
        ).stdout.strip()
        if loaded:
            log(f"{database} already holds the {scale} dataset ({loaded} ticket_flights)")
            return database
    else:
        owner = env["PASSERELLE_SOURCE"].split("://", 1)[1].split(":", 1)[0]
        run(["psql", "-Xqc", f"create database {database} owner {owner}", admin], env)
    run([BIN / "passerelle-demodata", "--scale", scale], {**env, "PASSERELLE_SOURCE": source}, capture=False)
    return database


def passerelle_once(source_db, env, target, load_path=None):
    """One `passerelle migrate`; with `load_path`, asserts that the sink chose it by itself."""
    target_db = "bench_passerelle"
    prefix = "passerelle_bench"
    run_env = {
        **env,
        "PASSERELLE_SOURCE": with_database(env["PASSERELLE_SOURCE"], source_db),
        "PASSERELLE_TARGET": with_database(target.url, target_db),
    }
    run([BIN / "passerelle", "cleanup", "--topic-prefix", prefix], run_env)
    target.recreate(target_db)
    before = process_cpu(target)
    summary = json.loads(
        run([BIN / "passerelle", "migrate", "--json", "--schema", "bookings", "--topic-prefix", prefix], run_env)
    )
    if load_path and summary.get("load_path") != load_path:
        raise SystemExit(f"bench: the sink loaded by {summary.get('load_path')}, not {load_path}")
    cpu = cpu_delta(before, process_cpu(target))
    cpu["passerelle"] = summary.get("cpu_seconds")
    run([BIN / "passerelle", "cleanup", "--topic-prefix", prefix], run_env)
    phases = dict(summary["phases"])
    return {
        "seconds": summary["seconds"],
        "phases": phases,
        "rows": summary["rows"],
        "rows_per_second": summary["rows_per_second"],
        "mb_per_second": summary["copy_bytes"] / 1e6 / phases.get("snapshot", summary["seconds"]),
        "peak_rss_mb": summary["peak_rss_mb"],
        "phase_peak_rss_mb": dict(summary["phase_peak_rss_mb"]),
        "cpu_seconds": cpu,
        "verified": summary["verified"],
        "load_path": summary.get("load_path"),
    }


def script_once(script, source_db, target_db, env, target=None):
    if target:
        env = {**env, "PASSERELLE_TARGET": target.url}
    output = run([ROOT / "bench" / script, source_db, target_db], env)
    return json.loads(output.strip().splitlines()[-1])


def passerelle_medians(passerelle):
    return {
        "seconds": median([r["seconds"] for r in passerelle]),
        "phases": {name: median([r["phases"].get(name) for r in passerelle]) for name in passerelle[0]["phases"]},
        "rows": passerelle[0]["rows"],
        "rows_per_second": median([r["rows_per_second"] for r in passerelle]),
        "snapshot_mb_per_second": median([r["mb_per_second"] for r in passerelle]),
        "peak_rss_mb": median([r["peak_rss_mb"] for r in passerelle]),
        "phase_peak_rss_mb": {
            name: median([r["phase_peak_rss_mb"].get(name) for r in passerelle])
            for name in passerelle[0]["phase_peak_rss_mb"]
        },
        "cpu_seconds": {name: median([r["cpu_seconds"][name] for r in passerelle]) for name in passerelle[0]["cpu_seconds"]},
        "verified": all(r["verified"] for r in passerelle),
        "load_path": passerelle[0]["load_path"],
        "runs": passerelle,
    }


def ratio(numerator, denominator):
    return round(numerator / denominator, 2) if numerator and denominator else None


def machine():
    return f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"


def mysql_suite(args, env, source_db):
    """Passerelle into MySQL by INSERT (local_infile OFF) and by LOAD DATA (ON), and the limit (ON)."""
    target = Target("mysql", env)
    target.start()
    try:
        target.set_local_infile(False)
        insert = [passerelle_once(source_db, env, target, "insert") for _ in range(args.runs)]
        target.set_local_infile(True)
        load_data = [passerelle_once(source_db, env, target, "load-data") for _ in range(args.runs)]
        direct = [script_once("direct.sh", source_db, "bench_direct", env, target) for _ in range(args.runs)]
    finally:
        target.set_local_infile(False)
        target.stop()
    insert, load_data = passerelle_medians(insert), passerelle_medians(load_data)
    direct_seconds = median([r.get("total_s") for r in direct])
    direct_load = median([r.get("load_s") for r in direct])
    return {
        "scale": args.scale,
        "runs": args.runs,
        "target": "mysql",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "passerelle_insert": insert,
        "passerelle_load_data": load_data,
        "direct": {"seconds": direct_seconds, "load_seconds": direct_load, "runs": direct},
        "ratios": {
            "insert_over_direct": ratio(insert["seconds"], direct_seconds),
            "load_data_over_direct": ratio(load_data["seconds"], direct_seconds),
            "insert_snapshot_over_direct_load": ratio(insert["phases"].get("snapshot"), direct_load),
            "load_data_snapshot_over_direct_load": ratio(load_data["phases"].get("snapshot"), direct_load),
            "insert_over_load_data": ratio(insert["seconds"], load_data["seconds"]),
            "insert_snapshot_over_load_data_snapshot": ratio(
                insert["phases"].get("snapshot"), load_data["phases"].get("snapshot")
            ),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["small", "medium", "big"], default="small")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--target", choices=["mariadb", "mysql"], default="mariadb")
    args = parser.parse_args()

    env = stack_env()
    run(["cargo", "build", "--release", "--locked", "-p", "passerelle-cli", "-p", "passerelle-demodata"],
        {**env, "CARGO_TARGET_DIR": str(TARGET_DIR)}, capture=False)
    source_db = load_dataset(args.scale, env)
    if args.target == "mysql":
        print(json.dumps(mysql_suite(args, env, source_db), indent=2))
        return

    target = Target("mariadb", env)
    passerelle = [passerelle_once(source_db, env, target) for _ in range(args.runs)]
    direct = [script_once("direct.sh", source_db, "bench_direct", env) for _ in range(args.runs)]
    reference = None if args.no_reference else script_once("reference.sh", source_db, "bench_reference", env)

    medians = passerelle_medians(passerelle)
    passerelle_seconds = medians["seconds"]
    passerelle_load = medians["phases"].get("snapshot")
    direct_seconds = median([r.get("total_s") for r in direct])
    # Passerelle's load is its snapshot phase (copy through Kafka into tables with primary keys only);
    # the limit's is the same copy straight into the same tables.
    direct_load = median([r.get("load_s") for r in direct])
    result = {
        "scale": args.scale,
        "runs": args.runs,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "passerelle": medians,
        "direct": {"seconds": direct_seconds, "load_seconds": direct_load, "runs": direct},
        "reference": reference,
        "ratios": {
            "passerelle_over_direct": ratio(passerelle_seconds, direct_seconds),
            "passerelle_load_over_direct_load": ratio(passerelle_load, direct_load),
            "reference_over_passerelle": (
                round(reference["wall_s"] / passerelle_seconds, 1) if reference and reference.get("wall_s") else None
            ),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
