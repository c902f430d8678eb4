"""The worker loop every CLM service runs: take a job, convert, record the result.

Jobs come from a SQLite queue (CLM_DB) that the course builder fills; `--once INPUT [OUTPUT]`
processes one file without a queue and prints the result as JSON.
"""
import json
import os
import sqlite3
import sys
import time

import attrs


@attrs.frozen
class Job:
    kind: str
    input_file: str
    output_file: str


@attrs.frozen
class Result:
    job: Job
    ok: bool
    detail: dict = attrs.field(factory=dict)
    seconds: float = 0.0


@attrs.define
class Worker:
    kind: str
    convert: object  # callable(Job) -> dict
    default_suffix: str

    def process(self, job: Job) -> Result:
        start = time.monotonic()
        try:
            detail = self.convert(job)
            ok = True
        except Exception as e:  # a failed job is reported, the worker keeps going
            detail, ok = {"error": f"{type(e).__name__}: {e}"}, False
        return Result(job, ok, detail, round(time.monotonic() - start, 3))

    def serve(self, db_path: str, poll: float = 1.0):
        conn = sqlite3.connect(db_path)
        conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, kind TEXT, input TEXT, output TEXT, state TEXT DEFAULT 'queued', result TEXT)")
        while True:
            row = conn.execute("SELECT id, input, output FROM jobs WHERE kind = ? AND state = 'queued' LIMIT 1", (self.kind,)).fetchone()
            if row is None:
                time.sleep(poll)
                continue
            result = self.process(Job(self.kind, row[1], row[2]))
            conn.execute("UPDATE jobs SET state = ?, result = ? WHERE id = ?",
                         ("done" if result.ok else "failed", json.dumps(attrs.asdict(result)), row[0]))
            conn.commit()

    def main(self, argv=None):
        argv = sys.argv[1:] if argv is None else argv
        if argv[:1] == ["--once"]:
            src = argv[1]
            out = argv[2] if len(argv) > 2 else os.path.join("/tmp", os.path.splitext(os.path.basename(src))[0] + self.default_suffix)
            result = self.process(Job(self.kind, src, out))
            print(json.dumps({"worker": self.kind, **attrs.asdict(result)}))
            return 0 if result.ok else 1
        self.serve(os.environ.get("CLM_DB", "/tmp/clm-jobs.db"))
        return 0
