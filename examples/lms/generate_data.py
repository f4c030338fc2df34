#!/usr/bin/env python3
"""Deterministic demo data for the LMS schema, written as SQL COPY blocks on stdout.

    python3 generate_data.py --scale 1 | docker exec -i lms-postgres psql -U lms_user -d lms_slncity

Scale 1 is about 10 MB of table data (2,000 patients, 6,000 visits, 18,000 test results);
rows grow linearly, so --scale 100 gives about 1 GB. The same scale and seed always give the
same rows. The whole load is one transaction: it lands completely or not at all.
"""

import argparse
import datetime
import random
import sys

FIRST = (
    "Aarav Priya Rahul Ananya Vikram Sneha Arjun Kavya Rohan Meera Sanjay Lakshmi Kiran "
    "Divya Suresh Asha Manoj Pooja Ravi Nisha Ganesh Deepa Anil Swathi Harish Revathi"
).split()
LAST = (
    "Sharma Reddy Iyer Nair Gupta Rao Patel Menon Kumar Singh Das Joshi Pillai Shetty "
    "Naidu Verma Bhat Kulkarni Hegde Krishnan"
).split()
STREETS = (
    "MG Road",
    "Brigade Road",
    "Residency Road",
    "Church Street",
    "Jayanagar 4th Block",
    "Koramangala 5th Block",
    "Indiranagar 100ft Road",
    "Malleshwaram 8th Cross",
)
TESTS = (
    ("HB", "Haemoglobin", "g/dL", (12.0, 17.5)),
    ("WBC", "Total leucocyte count", "10^3/uL", (4.0, 11.0)),
    ("PLT", "Platelet count", "10^3/uL", (150.0, 410.0)),
    ("FBS", "Fasting blood sugar", "mg/dL", (70.0, 100.0)),
    ("HBA1C", "Glycated haemoglobin", "%", (4.0, 5.6)),
    ("TSH", "Thyroid stimulating hormone", "uIU/mL", (0.4, 4.0)),
    ("CREA", "Serum creatinine", "mg/dL", (0.6, 1.3)),
    ("CHOL", "Total cholesterol", "mg/dL", (120.0, 200.0)),
    ("ALT", "Alanine aminotransferase", "U/L", (7.0, 56.0)),
    ("VITD", "25-hydroxy vitamin D", "ng/mL", (30.0, 100.0)),
)
NOTES = (
    "Patient reports intermittent fatigue over the last three months; no known drug allergies.",
    "Known case of type 2 diabetes mellitus on metformin 500 mg twice daily; diet counselling advised.",
    "Hypertensive, on amlodipine 5 mg; family history of ischaemic heart disease in the father.",
    "Hypothyroidism diagnosed in 2019, on levothyroxine 50 mcg; last TSH within reference range.",
    "Pre-operative work-up requested by the orthopaedic surgeon for elective knee arthroscopy.",
    "Antenatal profile, second trimester; previous pregnancy uneventful, no gestational diabetes.",
    "Routine annual health check requested by employer; asymptomatic, non-smoker, occasional alcohol.",
    "Follow-up after a course of oral iron for microcytic anaemia; compliance reported as good.",
)
INTERPRETATIONS = (
    "Value within the biological reference interval; correlate clinically.",
    "Mildly outside the reference interval; suggest repeat after two weeks with fasting sample.",
    "Result verified by repeat analysis on a fresh aliquot; instrument QC within limits.",
    "Critical value telephoned to the referring doctor and acknowledged; documented in the call log.",
    "Sample slightly haemolysed; result may be affected, recollection recommended if clinically indicated.",
)
DOCTORS = ("Dr. R. Menon", "Dr. S. Iyer", "Dr. A. Gupta", "Dr. P. Nair", "Dr. K. Shetty", None)
ROLES = ("admin", "technician", "pathologist", "reception", "billing")
STATUSES = ("registered", "collected", "reported", "reported", "reported", "cancelled")
PAYMENT = ("cash", "card", "upi", "insurance", None)
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def copy_text(value):
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_block(out, table, columns, rows):
    out.write("COPY %s (%s) FROM stdin;\n" % (table, ", ".join(columns)))
    for row in rows:
        out.write("\t".join(copy_text(v) for v in row))
        out.write("\n")
    out.write("\\.\n")


def name(rng):
    return "%s %s" % (rng.choice(FIRST), rng.choice(LAST))


def generate(scale, seed, out):
    n_users = max(5, 10 * scale)
    n_patients = 2000 * scale
    n_visits = 6000 * scale
    results_per_visit = 3
    out.write("-- datasafe demo data: scale %d, seed %d\nBEGIN;\nSET client_min_messages = warning;\n" % (scale, seed))

    rng = random.Random("users-%d" % seed)
    copy_block(
        out,
        "users",
        ("id", "username", "full_name", "role", "email", "created_at"),
        (
            (
                i,
                "user%05d" % i,
                name(rng),
                ROLES[i % len(ROLES)],
                "user%05d@lab.example" % i,
                (EPOCH + datetime.timedelta(days=i % 365)).isoformat(),
            )
            for i in range(1, n_users + 1)
        ),
    )

    rng = random.Random("patients-%d" % seed)
    copy_block(
        out,
        "patients",
        ("id", "mrn", "full_name", "date_of_birth", "sex", "phone", "address", "medical_notes", "created_at"),
        (
            (
                i,
                "MRN%09d" % i,
                name(rng),
                datetime.date(1940 + rng.randrange(80), 1 + rng.randrange(12), 1 + rng.randrange(28)).isoformat(),
                rng.choice("FMO"),
                "+91-%010d" % rng.randrange(10**10),
                "%d, %s, Bengaluru %06d" % (1 + rng.randrange(400), rng.choice(STREETS), 560001 + rng.randrange(100)),
                " ".join(rng.sample(NOTES, 2)),
                (EPOCH + datetime.timedelta(minutes=i * 7)).isoformat(),
            )
            for i in range(1, n_patients + 1)
        ),
    )

    rng = random.Random("visits-%d" % seed)
    copy_block(
        out,
        "visits",
        (
            "id",
            "patient_id",
            "registered_by",
            "visit_code",
            "visited_at",
            "referring_doctor",
            "clinical_history",
            "status",
        ),
        (
            (
                i,
                1 + rng.randrange(n_patients),
                1 + rng.randrange(n_users),
                "V%010d" % i,
                (EPOCH + datetime.timedelta(minutes=i * 3)).isoformat(),
                rng.choice(DOCTORS),
                rng.choice(NOTES),
                rng.choice(STATUSES),
            )
            for i in range(1, n_visits + 1)
        ),
    )

    rng = random.Random("results-%d" % seed)

    def results():
        rid = 0
        for visit in range(1, n_visits + 1):
            for code, test, unit, (low, high) in rng.sample(TESTS, results_per_visit):
                rid += 1
                value = round(rng.uniform(low * 0.7, high * 1.3), 2)
                flag = "low" if value < low else "high" if value > high else "normal"
                if value > high * 1.25:
                    flag = "critical"
                yield (
                    rid,
                    visit,
                    code,
                    test,
                    value,
                    unit,
                    "%s - %s %s" % (low, high, unit),
                    flag,
                    "%s %s" % (rng.choice(INTERPRETATIONS), rng.choice(INTERPRETATIONS)),
                    1 + rng.randrange(n_users),
                    (EPOCH + datetime.timedelta(minutes=visit * 3 + 240)).isoformat(),
                )

    copy_block(
        out,
        "test_results",
        (
            "id",
            "visit_id",
            "test_code",
            "test_name",
            "result_value",
            "unit",
            "reference_range",
            "flag",
            "interpretation",
            "approved_by",
            "reported_at",
        ),
        results(),
    )

    rng = random.Random("invoices-%d" % seed)

    def invoices():
        for visit in range(1, n_visits + 1):
            items = rng.sample(TESTS, results_per_visit)
            prices = [rng.randrange(150, 2500) * 100 for _ in items]
            amount = sum(prices)
            yield (
                visit,
                visit,
                "INV-%010d" % visit,
                amount,
                rng.choice((0, amount, amount)),
                rng.choice(PAYMENT),
                "; ".join("%s (%s) Rs %.2f" % (t[1], t[0], p / 100) for t, p in zip(items, prices)),
                (EPOCH + datetime.timedelta(minutes=visit * 3 + 10)).isoformat(),
            )

    copy_block(
        out,
        "invoices",
        ("id", "visit_id", "invoice_no", "amount_cents", "paid_cents", "payment_mode", "line_items", "issued_at"),
        invoices(),
    )

    last_ids = {
        "users": n_users,
        "patients": n_patients,
        "visits": n_visits,
        "test_results": n_visits * results_per_visit,
        "invoices": n_visits,
    }
    for table, last in last_ids.items():
        out.write("ALTER SEQUENCE %s_id_seq RESTART WITH %d;\n" % (table, last + 1))
    out.write("COMMIT;\nANALYZE;\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="size knob: 1 is about 10 MB, 100 about 1 GB")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same rows")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be a whole number of at least 1")
    try:
        generate(args.scale, args.seed, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (psql) stopped early; its own error says why.
        sys.stderr.write("generate_data: the reader closed the pipe before all rows were written\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
