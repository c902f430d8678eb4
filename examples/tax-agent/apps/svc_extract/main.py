"""svc-extract: fields from document text: UTR and VAT numbers (check digits), dates, amounts."""
import re

from dateutil import parser as dateparser
from pydantic import BaseModel
from stdnum.gb import utr, vat

from libs.app import create_app, json_response

app = create_app("svc-extract")

DATE = re.compile(r"\b\d{1,2} (?:January|February|March|April|May|June|July|August|September|October|November|December) \d{4}\b")
AMOUNT = re.compile(r"£\s?([\d,]+\.\d{2})")
VAT = re.compile(r"\bGB ?\d{3} ?\d{4} ?\d{2}\b")
UTR = re.compile(r"\b\d{5} ?\d{5}\b")


class Document(BaseModel):
    text: str


def extract(text: str) -> dict:
    vats = [m.group(0) for m in VAT.finditer(text)]
    utrs = [m.group(0) for m in UTR.finditer(text)]
    return {
        "vat_numbers": [{"value": vat.format(v), "valid": vat.is_valid(v)} for v in vats],
        "utrs": [{"value": utr.compact(u), "valid": utr.is_valid(u)} for u in utrs],
        "dates": [dateparser.parse(d, dayfirst=True).date().isoformat() for d in DATE.findall(text)],
        "total": max((float(a.replace(",", "")) for a in AMOUNT.findall(text)), default=None),
    }


@app.post("/v1/extract")
def extract_endpoint(doc: Document):
    return json_response(extract(doc.text))
