-- expect: drop-materialized-view
DROP MATERIALIZED VIEW visit_summary;
