"""The documents a lab hands out: the lab report of a visit (PDF) and the invoice export (XLSX)."""

import io
import os

import sqlalchemy as sa
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

_engine = None


def engine():
    global _engine
    if _engine is None:
        url = sa.engine.URL.create(
            "postgresql+pg8000",
            username=os.environ["LMS_DB_USER"],
            password=os.environ["LMS_DB_PASSWORD"],
            host=os.environ.get("LMS_DB_HOST", "127.0.0.1"),
            port=int(os.environ.get("LMS_DB_PORT", "5432")),
            database=os.environ["LMS_DB_NAME"],
        )
        _engine = sa.create_engine(url, pool_size=2, pool_pre_ping=True)
    return _engine


VISIT = sa.text(
    "SELECT v.visit_code, v.visited_at, v.referring_doctor, p.mrn, p.full_name, p.date_of_birth, p.sex "
    "FROM visits v JOIN patients p ON p.id = v.patient_id WHERE v.visit_code = :code"
)
RESULTS = sa.text(
    "SELECT r.test_name, r.result_value, r.unit, r.reference_range, r.flag FROM test_results r "
    "JOIN visits v ON v.id = r.visit_id WHERE v.visit_code = :code ORDER BY r.id"
)
INVOICES = sa.text(
    "SELECT invoice_no, issued_at, amount_cents, paid_cents, payment_mode FROM invoices ORDER BY id LIMIT :limit"
)


def lab_report_pdf(visit_code):
    """The visit's lab report as PDF bytes, or None when there is no such visit."""
    with engine().connect() as conn:
        visit = conn.execute(VISIT, {"code": visit_code}).mappings().first()
        if visit is None:
            return None
        results = conn.execute(RESULTS, {"code": visit_code}).all()
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    story = [
        Paragraph("Laboratory report %s" % visit["visit_code"], styles["Title"]),
        Paragraph(
            "%s (MRN %s, %s, born %s) - visited %s - referred by %s"
            % (
                visit["full_name"],
                visit["mrn"],
                visit["sex"],
                visit["date_of_birth"],
                visit["visited_at"],
                visit["referring_doctor"] or "self",
            ),
            styles["Normal"],
        ),
        Spacer(1, 12),
    ]
    table = Table([("Test", "Result", "Unit", "Reference", "Flag")] + [tuple(str(c or "") for c in r) for r in results])
    table.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)])
    )
    story.append(table)
    SimpleDocTemplate(buffer, pagesize=A4).build(story)
    return buffer.getvalue()


def invoices_xlsx(limit=1000):
    """The first ``limit`` invoices as an XLSX workbook's bytes."""
    with engine().connect() as conn:
        rows = conn.execute(INVOICES, {"limit": limit}).all()
    book = Workbook()
    sheet = book.active
    sheet.title = "invoices"
    sheet.append(["invoice", "issued", "amount (Rs)", "paid (Rs)", "mode"])
    for number, issued, amount, paid, mode in rows:
        sheet.append([number, issued.replace(tzinfo=None), amount / 100, paid / 100, mode])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
