"""GET /health answers 200 with JSON when the database answers, 503 when it does not."""

import os
import pathlib

import pg8000.native
from flask import Flask, Response, abort, jsonify

from lms_backend import documents

app = Flask(__name__)
VERSION = pathlib.Path(__file__).resolve().parent.parent.joinpath("VERSION").read_text().strip()
CRITICAL_TABLES = ("users", "patients", "visits", "test_results", "invoices")


def _connect():
    return pg8000.native.Connection(
        host=os.environ.get("LMS_DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("LMS_DB_PORT", "5432")),
        database=os.environ["LMS_DB_NAME"],
        user=os.environ["LMS_DB_USER"],
        password=os.environ["LMS_DB_PASSWORD"],
        timeout=5,
    )


@app.get("/health")
def health():
    try:
        conn = _connect()
        try:
            conn.run("SELECT 1")
            present = {
                row[0]
                for row in conn.run("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            }
        finally:
            conn.close()
    except Exception as exc:  # any failure to reach the database is ill health
        return jsonify(status="error", version=VERSION, database="unreachable", error=type(exc).__name__), 503
    missing = [t for t in CRITICAL_TABLES if t not in present]
    if missing:
        return jsonify(status="error", version=VERSION, database="ok", missing_tables=missing), 503
    return jsonify(status="ok", version=VERSION, database="ok")


@app.get("/")
def index():
    return jsonify(service="lms-backend", version=VERSION)


@app.get("/reports/visit/<visit_code>.pdf")
def lab_report(visit_code):
    pdf = documents.lab_report_pdf(visit_code)
    if pdf is None:
        abort(404)
    return Response(pdf, mimetype="application/pdf")


@app.get("/exports/invoices.xlsx")
def invoice_export():
    return Response(
        documents.invoices_xlsx(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
