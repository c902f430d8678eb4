"""The autoscaler's entry point: reconcile loop, decision history in SQLite, Flask dashboard.

`python -m src.operator --once` runs one reconcile cycle on sample metrics (no cluster needed),
renders the dashboard and prints a JSON summary. Without --once it serves the dashboard on
:8080 and reconciles every 30 s. The metrics are sample data here; the real operator reads
them from the metrics API of the cluster it runs in.
"""
import json
import os
import sqlite3
import sys
import threading
import time
from importlib.metadata import version

import kubernetes
from flask import Flask, render_template

from src.policy import Policy, decide

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = os.environ.get("AUTOSCALER_DB", "/tmp/autoscaler.db")

SAMPLE = [
    (Policy("checkout", "250m", 0.6, min_replicas=2, max_replicas=12), 4, ["400m", "520m", "610m", "700m", "790m"]),
    (Policy("search", "500m", 0.7, min_replicas=1, max_replicas=8), 3, ["900m", "870m", "850m", "820m", "800m"]),
    (Policy("batch", "1", 0.8, min_replicas=1, max_replicas=4), 2, ["1200m", "1100m", "900m", "600m", "400m"]),
]

app = Flask(__name__, template_folder=os.path.join(ROOT, "templates"))


def db():
    conn = sqlite3.connect(DB)
    conn.execute("CREATE TABLE IF NOT EXISTS decisions (ts REAL, deployment TEXT, replicas INT, desired INT, action TEXT, detail TEXT)")
    return conn


def reconcile():
    decisions = [decide(policy, replicas, usage) for policy, replicas, usage in SAMPLE]
    with db() as conn:
        conn.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                         [(time.time(), d["deployment"], d["replicas"], d["desired"], d["action"], json.dumps(d)) for d in decisions])
    return decisions


def history(limit=20):
    with db() as conn:
        rows = conn.execute("SELECT detail FROM decisions ORDER BY ts DESC LIMIT ?", (limit,)).fetchall()
    return [json.loads(r[0]) for r in rows]


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/")
def dashboard():
    return render_template("dashboard.html", decisions=history(), kubernetes_version=kubernetes.__version__)


def loop():
    while True:
        reconcile()
        time.sleep(30)


if __name__ == "__main__":
    if "--once" in sys.argv:
        decisions = reconcile()
        page = app.test_client().get("/").get_data(as_text=True)
        print(json.dumps({
            "service": "autoscaler",
            "kubernetes": kubernetes.__version__,
            "flask": version("flask"),
            "sqlite_rows": len(history(1000)),
            "dashboard_title": page.split("<title>")[1].split("</title>")[0],
            "dashboard_rows": page.count('<tr class="decision">'),
            "decisions": decisions,
        }))
    else:
        threading.Thread(target=loop, daemon=True).start()
        app.run(host="0.0.0.0", port=8080)
