"""The undo engine's pure parts: targets, shapes, foreign-key order and the SQL it builds.

What the SQL does is proven against real servers in test_undo.py; these pin the decisions.
"""

import datetime

import pytest
from ansible.module_utils.datasafe import undo

NOW = datetime.datetime(2026, 12, 1, 16, 0, tzinfo=datetime.timezone.utc)


def shape(pk=("id",), parents=(), cols=(("id", "integer", False), ("v", "text", False)), seqs=()):
    return {"regclass": None, "columns": list(cols), "pk": list(pk), "sequences": list(seqs), "parents": list(parents)}


def params(**kw):
    p = dict(target_kind="time", target="2026-12-01 15:59:00+00", mistake_xids=[])
    p.update(kw)
    return p


def test_transaction_ids_are_taken_as_xmin_shows_them():
    assert undo.normalize_xids(["812", 812, str((3 << 32) + 812)]) == [812]
    with pytest.raises(undo.UndoError, match="'abc' is not a number"):
        undo.normalize_xids(["abc"])


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(target_kind="latest", target=""), "needs the moment just before the mistake"),
        (dict(target="2026-12-01 16:30:00+00"), "is in the future"),
        (dict(target="2026-12-01 15:59:00"), "has no zone"),
        (dict(target="yesterday"), "is not a time"),
        (dict(target_kind="xid", target="12a"), "is not a number"),
        (dict(mistake_xids=["x"]), "is not a number"),
    ],
)
def test_unusable_targets_are_refused(kw, expect):
    with pytest.raises(undo.UndoError, match=expect):
        undo.check_target(params(**kw), now=NOW)


def test_a_time_stops_just_before_it_and_an_xid_target_is_the_mistake():
    kind, value, inclusive, when, xids = undo.check_target(params(mistake_xids=["7"]), now=NOW)
    assert (kind, inclusive, xids) == ("time", False, [7])
    assert when == datetime.datetime(2026, 12, 1, 15, 59, tzinfo=datetime.timezone.utc)
    kind, value, inclusive, when, xids = undo.check_target(params(target_kind="xid", target="900"), now=NOW)
    assert (inclusive, when, xids) == (False, None, [900])


def test_missing_tables_and_tables_without_a_key_are_refused_by_name():
    item = dict(asked=0, regclass="visits", kind="r", columns=[], pk=["id"], sequences=None, parents=None)
    with pytest.raises(undo.UndoError, match="no table nope in the live database"):
        undo.judge_shapes(["visits", "nope"], [item, dict(item, asked=1, regclass=None, kind=None)])
    with pytest.raises(undo.UndoError, match="loose_log has no primary key: undo compares rows by primary key"):
        undo.judge_shapes(["loose_log"], [dict(item, regclass="loose_log", pk=None)])
    with pytest.raises(undo.UndoError, match="no table v in the live database"):
        undo.judge_shapes(["v"], [dict(item, regclass="v", kind="v")])  # a view is not a table


def test_a_changed_shape_is_named_column_by_column():
    then = {"t": shape()}
    assert undo.shape_changes({"t": shape()}, then) == []
    now = {"t": shape(cols=(("id", "integer", False), ("v", "text", False), ("w", "integer", False)))}
    assert undo.shape_changes(now, then) == ["t: columns then 2, now 3 (new: w integer)"]
    now = {"t": shape(cols=(("id", "integer", False), ("v", "varchar(3)", False)))}
    assert "gone: v text; new: v varchar(3)" in undo.shape_changes(now, then)[0]


def test_parents_come_before_children_and_a_cycle_does_not_hang():
    shapes = {"results": shape(parents=["visits"]), "visits": shape(parents=["patients"]), "patients": shape()}
    for name in shapes:
        shapes[name]["regclass"] = name
    assert undo.fk_order(shapes) == ["patients", "visits", "results"]
    cyc = {"a": dict(shape(parents=["b"]), regclass="a"), "b": dict(shape(parents=["a"]), regclass="b")}
    assert sorted(undo.fk_order(cyc)) == ["a", "b"]


def test_the_comparison_matches_by_key_and_compares_every_column_as_text():
    sql = undo.compare_sql(0, "public.visits", shape(pk=("a", "b")), [5, 9])
    assert 'l."a" = t."a" AND l."b" = t."b"' in sql
    assert 'ROW(t."id"::text, t."v"::text) IS DISTINCT FROM ROW(l."id"::text, l."v"::text)' in sql
    assert "ARRAY[5, 9]::bigint[]" in sql and '"public"."visits"' in sql
    assert "ARRAY[]::bigint[]" in undo.compare_sql(0, "visits", shape(), [])  # nothing named: only conflicts


def test_the_apply_is_one_checked_transaction_in_foreign_key_order():
    shapes = {
        "visits": shape(seqs=[("id", "public.visits_id_seq")]),
        "results": shape(
            parents=["visits"], cols=(("id", "integer", False), ("v", "text", False), ("v2", "text", True))
        ),
    }
    sql = undo.apply_sql("datasafe_undo_20261201T160300Z", shapes, ["visits", "results"], "why 'quoted'")
    lines = sql.splitlines()
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;" and sql.count("COMMIT;") == 1
    assert "SET LOCAL datasafe.break_glass = 'why ''quoted''';" in sql
    assert 'LOCK TABLE "visits", "results" IN SHARE ROW EXCLUSIVE MODE;' in sql
    assert sql.index('INSERT INTO "visits"') < sql.index('INSERT INTO "results"') < sql.index('UPDATE "visits"')
    # a generated column is neither inserted nor set; the key is never set
    assert 'INSERT INTO "results" ("id", "v") OVERRIDING SYSTEM VALUE SELECT "id", "v"' in sql
    assert 'UPDATE "results" AS l SET ("v") = ROW(r."v")' in sql
    assert "setval('public.visits_id_seq', m)" in sql
    assert "after <> before + brought" in sql and "was applied already" in sql
    assert "in use again since the review" in sql and "changed or deleted since the review" in sql
    assert sql.index("since the review") < sql.index('INSERT INTO "visits"')


def test_review_names_are_checked():
    assert undo.review_schema("20261201T160300Z") == "datasafe_undo_20261201t160300z"
    with pytest.raises(undo.UndoError, match="not one undo creates"):
        undo.review_schema("x; DROP")
    assert undo.flat_name("lab.results") == "lab__results"
    with pytest.raises(ValueError):
        undo.flat_name('a"b')
