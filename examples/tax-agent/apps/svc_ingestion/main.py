"""svc-ingestion: accepts document uploads (multipart), stores them with a ULID and a checksum."""
import datetime
import hashlib
import json
import os

import ulid
from fastapi import File, Form, HTTPException, UploadFile

from libs.app import create_app, json_response

app = create_app("svc-ingestion")
DATA_DIR = os.environ.get("DATA_DIR", "/tmp/documents")


@app.post("/v1/documents")
async def upload(file: UploadFile = File(...), kind: str = Form("unknown")):
    data = await file.read()
    doc_id = str(ulid.new())
    record = {
        "id": doc_id,
        "filename": file.filename,
        "kind": kind,
        "content_type": file.content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    os.makedirs(DATA_DIR, exist_ok=True)
    with open(os.path.join(DATA_DIR, doc_id), "wb") as f:
        f.write(data)
    with open(os.path.join(DATA_DIR, doc_id + ".json"), "w") as f:
        json.dump(record, f)
    return json_response(record, status_code=201)


@app.get("/v1/documents/{doc_id}")
def get(doc_id: str):
    try:
        with open(os.path.join(DATA_DIR, os.path.basename(doc_id) + ".json")) as f:
            return json_response(json.load(f))
    except FileNotFoundError:
        raise HTTPException(404, "no such document")
