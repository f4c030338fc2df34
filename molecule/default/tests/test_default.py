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
