"""The throwaway stack after verify.yml: up, healthy, its data on the named volume, counts exact."""

import json


def test_health_endpoint_answers_ok(host, stack):
    v = stack
    out = host.check_output("curl --silent --show-error --fail %s" % v["datasafe_health_url"])
    assert json.loads(out) == {"database": "ok", "status": "ok", "version": "1.0.0"}


def test_database_keeps_its_data_on_the_named_volume(host, stack):
    v = stack
    mounts = json.loads(host.check_output("docker inspect --format '{{json .Mounts}}' %s" % v["datasafe_db_container"]))
    data = [m for m in mounts if m["Destination"] == "/var/lib/postgresql/data"]
    assert [(m["Type"], m["Name"]) for m in data] == [("volume", "%s_postgres_data" % v["datasafe_compose_project"])]


def test_seeded_row_counts_are_exact(host, stack):
    v = stack
    sql = (
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM patients), (SELECT count(*) FROM visits), "
        "(SELECT count(*) FROM test_results), (SELECT count(*) FROM invoices)"
    )
    out = host.check_output(
        "docker exec %s psql -X -At -U lms_user -d lms_slncity -c %s" % (v["datasafe_db_container"], json.dumps(sql))
    )
    assert out == "10|2000|6000|18000|6000"


def test_listens_on_loopback_only(host, stack):
    v = stack
    for port in (v["datasafe_test_db_port"], v["datasafe_test_backend_port"]):
        sockets = host.socket.get_listening_sockets()
        mine = [s for s in sockets if s.endswith(":%s" % port)]
        assert mine and all(s.startswith("tcp://127.0.0.1:") for s in mine), mine


def test_lab_report_is_a_pdf_of_the_visit(host, stack):
    base = stack["datasafe_health_url"].rsplit("/", 1)[0]
    report = host.run("curl --silent --fail %s/reports/visit/V0000000001.pdf | head -c 5" % base)
    assert report.rc == 0 and report.stdout == "%PDF-"
    missing = host.run("curl --silent --output /dev/null --write-out '%%{http_code}' %s/reports/visit/NOPE.pdf" % base)
    assert missing.stdout == "404"


def test_invoice_export_is_a_workbook(host, stack):
    base = stack["datasafe_health_url"].rsplit("/", 1)[0]
    export = host.run("curl --silent --fail %s/exports/invoices.xlsx | head -c 2" % base)
    assert export.rc == 0 and export.stdout == "PK"  # an XLSX is a zip archive
