"""The guard inside PostgreSQL: install, check and remove it (plain SQL, no extension).

What the guard is (the SQL below, installed into the protected database):

- schema ``datasafe``: ``settings`` (version, default row limit, protected schemas),
  ``table_limits`` (per-table overrides), ``audit`` (one row per break-glass), and the
  guard's functions;
- on every table (plain and partitioned, partitions included) of the protected schemas, five
  statement-level triggers, ``ENABLE ALWAYS`` (``session_replication_role = replica`` does not
  skip them): ``BEFORE TRUNCATE`` refuses TRUNCATE; ``AFTER DELETE`` / ``AFTER UPDATE`` refuse
  one statement that changes every row of a table holding at least two rows, or more rows than
  the table's limit, counting the statement's rows with the ``BEFORE DELETE`` / ``BEFORE
  UPDATE`` triggers (see TRIGGERS: statistics counters on a plain table, a transition table on a
  table whose statements reach child tables);
- event triggers, ``ENABLE ALWAYS``: ``ddl_command_end`` attaches the triggers to tables created
  later, re-enables them when an ``ALTER TABLE`` weakened them, refuses an ``ALTER TABLE ...
  DISABLE TRIGGER`` of the guard's triggers; ``sql_drop`` refuses dropping tables, materialized
  views, columns and schemas of the protected schemas, and the guard's own objects.
- ``SET LOCAL datasafe.break_glass = '<reason>'`` lets a refused operation through, writes an
  ``datasafe.audit`` row in the same transaction (so a rolled-back transaction leaves none) and a
  ``RAISE LOG`` line. Every refusal is logged too, with its transaction id and time.

Allowed on purpose: temporary tables; a table or schema created in the same transaction
(remembered in a transaction-local setting by the ``ddl_command_end`` trigger); indexes, views,
sequences, functions, types and constraints (a cascade that would take a column or a table
with it is refused through that column or table).

The engine talks to the database with psql inside the container (:mod:`container`); it returns
results or raises :class:`DbGuardError`. The check never trusts the guard's own functions: it
reads the catalogs and compares every function body with the one shipped here (md5 of prosrc).
"""

import hashlib
import json
import re

from ansible.module_utils.datasafe import container, metrics

VERSION = "2"
SCHEMA = "datasafe"
# name: (function, timing and event). Every guarded table carries all five.
TRIGGERS = {
    "datasafe_guard_truncate": ("guard_truncate", "BEFORE TRUNCATE"),
    "datasafe_guard_delete_start": ("guard_mass_change_start", "BEFORE DELETE"),
    "datasafe_guard_delete": ("guard_mass_change", "AFTER DELETE"),
    "datasafe_guard_update_start": ("guard_mass_change_start", "BEFORE UPDATE"),
    "datasafe_guard_update": ("guard_mass_change", "AFTER UPDATE"),
}
# How the AFTER triggers count one statement's rows. On a plain table, without a transition table
# and without a WHEN clause (both cost every DELETE/UPDATE, the WHEN clause most: PostgreSQL
# rebuilds its expression for each statement): the BEFORE trigger pushes the table's statistics
# counter of rows this transaction deleted (updated) on a transaction-local stack, the AFTER
# trigger pops it and subtracts it from the counter after the statement (a statement run inside
# another on the same table, by a trigger or a function, has its own entry; the outer one does not
# count its rows). The counter may also hold earlier transactions' rows (a session's counts wait
# up to a second to be flushed), never fewer than this transaction's; a statement of at most one
# row ends there, nothing else runs. A partitioned table or a table
# with inheritance children changes rows of other tables (whose counters its own triggers do not
# see): it counts through a transition table (TREE), and a table that gains a child is switched
# to it by the ddl_command_end trigger (attach); a table that lost its children may keep it.
TREE = ("guard_mass_change_tree", "REFERENCING OLD TABLE AS datasafe_old_rows ")
COUNTED_THROUGH_TREE = ("datasafe_guard_delete", "datasafe_guard_update")


def trigger_definitions(name, table, tree):
    """The definitions (as pg_get_triggerdef prints them with search_path = pg_catalog) a guard
    trigger on ``table`` (``format('%I.%I')``) may have, by the function it calls; ``tree``: the
    table is partitioned or has inheritance children (only the transition-table count is right)."""
    function, timing = TRIGGERS[name]
    variants = [(function, "")]
    if name in COUNTED_THROUGH_TREE:
        variants = [TREE] if tree else [(function, ""), TREE]
    return {
        "datasafe." + f: "CREATE TRIGGER %s %s ON %s %sFOR EACH STATEMENT EXECUTE FUNCTION datasafe.%s()"
        % (name, timing, table, transition, f)
        for f, transition in variants
    }


EVENT_TRIGGERS = {
    # name: (event, function, WHEN clause)
    "datasafe_guard_ddl": ("ddl_command_end", "guard_ddl", ""),
    "datasafe_guard_drop": ("sql_drop", "guard_drop", ""),
    # sql_drop never fires when the drop takes guard_drop() itself (DROP SCHEMA datasafe CASCADE,
    # DROP OWNED BY its owner): those are refused before they start.
    "datasafe_guard_drop_start": (
        "ddl_command_start",
        "guard_drop_start",
        "WHEN TAG IN ('DROP SCHEMA', 'DROP FUNCTION', 'DROP ROUTINE', 'DROP OWNED')",
    ),
}
DEFAULT_MAX_ROWS = 1000

# Every name is schema-qualified (or a pg_catalog built-in): a plain dump's restore runs with an
# empty search_path, and a caller's search_path must never choose what the guard calls. The
# functions on the hot path (guard_mass_change_start, guard_mass_change) run no query: statistics
# counters, one transaction-local setting keyed by table and trigger depth holding a stack of
# counters (a statement run inside another on the same table, by a trigger or by a function the
# outer one calls, pushes and pops its own), no SECURITY DEFINER or SET clauses (a GUC save and
# restore each).
FUNCTIONS = [
    (
        "protected_schema(schema_name text)",
        "boolean",
        "sql STABLE",
        """
    SELECT schema_name NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'datasafe')
       AND schema_name NOT LIKE 'pg\\_temp\\_%'
       AND schema_name NOT LIKE 'pg\\_toast\\_temp\\_%'
       AND coalesce((SELECT s.value = '*' OR schema_name = ANY (pg_catalog.string_to_array(s.value, ','))
                       FROM datasafe.settings s WHERE s.key = 'schemas'), true)
""",
    ),
    (
        "created_here(kind text, object_id oid)",
        "boolean",
        "sql STABLE",
        """
    SELECT coalesce((kind || object_id::text) = ANY (pg_catalog.string_to_array(
               pg_catalog.current_setting('datasafe.created_in_transaction', true), ',')), false)
""",
    ),
    (
        "table_name(relation oid)",
        "text",
        "sql STABLE",
        """
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation
""",
    ),
    (
        "break_glass_reason()",
        "text",
        "plpgsql STABLE",
        """
DECLARE
    reason text := pg_catalog.btrim(coalesce(pg_catalog.current_setting('datasafe.break_glass', true), ''));
BEGIN
    IF reason = '' OR pg_catalog.lower(reason) IN ('on', 'off', 'true', 'false', 'yes', 'no', '1', '0', 't', 'f') THEN
        RETURN NULL;  -- a switch is not a reason
    END IF;
    RETURN reason;
END
""",
    ),
    (
        "refuse_or_allow(rule text, operation text, object_name text, affected bigint, row_limit bigint, what text)",
        "void",
        "plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp",
        """
DECLARE
    reason text := datasafe.break_glass_reason();
    txid text := pg_catalog.pg_current_xact_id()::text;
    at timestamptz := pg_catalog.clock_timestamp();
    limit_text text := CASE WHEN row_limit IS NULL THEN 'none (always refused)'
                            ELSE row_limit::text || ' rows per statement' END;
BEGIN
    IF reason IS NOT NULL THEN
        INSERT INTO datasafe.audit (at, txid, session_user_name, application_name,
                                    client_addr, rule, operation, object_name, affected_rows, reason, statement)
        VALUES (at, txid::bigint, session_user,
                pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr(),
                rule, operation, object_name, affected, reason, pg_catalog.current_query());
        RAISE LOG 'datasafe guard: break-glass % on % (rule %, % rows, limit %) by % (application "%", client %), '
                  'reason "%", txid %, at %',
            operation, object_name, rule, coalesce(affected::text, '-'), limit_text, session_user,
            pg_catalog.current_setting('application_name'), coalesce(pg_catalog.inet_client_addr()::text, 'local'),
            reason, txid, at;
        RETURN;
    END IF;
    RAISE LOG 'datasafe guard: refused % on % (rule %, % rows, limit %) by % (application "%", client %), txid %, at %',
        operation, object_name, rule, coalesce(affected::text, '-'), limit_text, session_user,
        pg_catalog.current_setting('application_name'), coalesce(pg_catalog.inet_client_addr()::text, 'local'),
        txid, at;
    RAISE EXCEPTION 'datasafe guard refused % on %: % (rule %, rows %, limit %). To do it on purpose, after a '
                    'backup: SET LOCAL datasafe.break_glass = ''<reason>'' in the same transaction',
            operation, object_name, what, rule, coalesce(affected::text, '-'), limit_text
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('rule %s, object %s, rows %s, limit %s, txid %s, at %s',
                                         rule, object_name, coalesce(affected::text, '-'), limit_text, txid, at),
              HINT = 'If this is intended: take a backup, then run it again in a transaction that first does '
                     'SET LOCAL datasafe.break_glass = ''<reason>'' (recorded in datasafe.audit).';
END
""",
    ),
    (
        "guard_truncate()",
        "trigger",
        "plpgsql",
        """
DECLARE
    affected bigint;
BEGIN
    IF datasafe.created_here('r', TG_RELID) THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', TG_RELID::regclass) INTO affected;
    PERFORM datasafe.refuse_or_allow('truncate', 'TRUNCATE', datasafe.table_name(TG_RELID), affected, NULL,
        pg_catalog.format('TRUNCATE removes all %s rows of the table', affected));
    RETURN NULL;
END
""",
    ),
    (
        "guard_mass_change_start()",
        "trigger",
        "plpgsql",
        """
DECLARE
    changed bigint;
    name text := 'datasafe.before_' || TG_OP || '_' || TG_RELID::text || '_' || pg_catalog.pg_trigger_depth()::text;
    noted text := coalesce(pg_catalog.current_setting(name, true), '');
    ignored text;
BEGIN
    -- Before a DELETE (UPDATE): how many rows of the table this transaction has deleted (updated)
    -- so far, pushed on a stack (comma-separated) that the AFTER trigger pops. A stack, because a
    -- statement can run inside another on the same table at the same trigger depth (a function
    -- the outer statement calls): each pops its own entry.
    IF TG_OP = 'DELETE' THEN
        changed := pg_catalog.pg_stat_get_xact_tuples_deleted(TG_RELID);
    ELSE
        changed := pg_catalog.pg_stat_get_xact_tuples_updated(TG_RELID);
    END IF;
    IF noted <> '' THEN
        ignored := pg_catalog.set_config(name, noted || ',' || changed::text, true);
    ELSE
        ignored := pg_catalog.set_config(name, changed::text, true);
    END IF;
    RETURN NULL;
END
""",
    ),
    (
        "guard_mass_change()",
        "trigger",
        "plpgsql",
        """
DECLARE
    changed bigint;
    name text := 'datasafe.before_' || TG_OP || '_' || TG_RELID::text || '_' || pg_catalog.pg_trigger_depth()::text;
    noted text := coalesce(pg_catalog.current_setting(name, true), '');
    stack text[];
    depth int;
    before bigint := 0;
    ignored text;
BEGIN
    -- After a DELETE (UPDATE) of a plain table: the statement's rows are the counter now less the
    -- counter guard_mass_change_start pushed before it (popped here; none or a larger one was set
    -- by hand: every row counts). The statement this one ran inside (the entry below) is told not
    -- to count these rows as its own.
    IF TG_OP = 'DELETE' THEN
        changed := pg_catalog.pg_stat_get_xact_tuples_deleted(TG_RELID);
    ELSE
        changed := pg_catalog.pg_stat_get_xact_tuples_updated(TG_RELID);
    END IF;
    IF noted <> '' THEN
        stack := pg_catalog.string_to_array(noted, ',');
        depth := pg_catalog.cardinality(stack);
        before := stack[depth]::bigint;
        IF before > changed THEN
            before := 0;  -- not noted by this transaction (set by hand): every row it changed counts
        END IF;
        IF depth > 1 THEN
            stack[depth - 1] := (stack[depth - 1]::bigint + changed - before)::text;
        END IF;
        ignored := pg_catalog.set_config(name, pg_catalog.array_to_string(stack[1:depth - 1], ','), true);
    END IF;
    IF changed - before < 2 THEN
        IF changed = 0 AND pg_catalog.current_setting('track_counts') <> 'on' THEN
            PERFORM datasafe.refuse_or_allow('guard-cannot-count', TG_OP, datasafe.table_name(TG_RELID), NULL, NULL,
                'track_counts is off, so the guard cannot count the rows one statement changes: set track_counts = on');
        END IF;
        RETURN NULL;
    END IF;
    PERFORM datasafe.judge_mass_change(TG_OP, TG_RELID, changed - before);
    RETURN NULL;
END
""",
    ),
    (
        "guard_mass_change_tree()",
        "trigger",
        "plpgsql",
        """
DECLARE
    affected bigint;
    name text := 'datasafe.before_' || TG_OP || '_' || TG_RELID::text || '_' || pg_catalog.pg_trigger_depth()::text;
    noted text := coalesce(pg_catalog.current_setting(name, true), '');
    ignored text;
BEGIN
    -- After a DELETE (UPDATE) of a partitioned table or one with inheritance children: the
    -- statement's rows, in whichever table they were, are its transition table. The counter
    -- guard_mass_change_start pushed is popped unread (the stack stays as long as the nesting).
    IF noted <> '' THEN
        ignored := pg_catalog.set_config(name, pg_catalog.regexp_replace(noted, ',?[^,]*$', ''), true);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM datasafe_old_rows OFFSET 1) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO affected FROM datasafe_old_rows;
    PERFORM datasafe.judge_mass_change(TG_OP, TG_RELID, affected);
    RETURN NULL;
END
""",
    ),
    (
        "judge_mass_change(operation text, relation oid, affected bigint)",
        "void",
        "plpgsql",
        """
DECLARE
    rel text := datasafe.table_name(relation);
    row_limit bigint := NULL;
    has_override boolean := false;
    remaining bigint;
    verb text := CASE operation WHEN 'DELETE' THEN 'delete' ELSE 'update' END;
BEGIN
    IF datasafe.created_here('r', relation) THEN
        RETURN;
    END IF;
    SELECT true, l.max_rows INTO has_override, row_limit
      FROM datasafe.table_limits l JOIN pg_catalog.pg_class c ON c.oid = relation
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE l.schema_name = n.nspname AND l.table_name = c.relname;
    IF has_override IS NOT TRUE THEN
        row_limit := coalesce((SELECT s.value::bigint FROM datasafe.settings s WHERE s.key = 'default_max_rows'), 1000);
    ELSIF row_limit IS NULL THEN
        RETURN;  -- the inventory switched the mass-change rule off for this table
    END IF;
    IF affected > row_limit THEN
        PERFORM datasafe.refuse_or_allow('mass-' || verb || '-over-limit', operation, rel, affected, row_limit,
            pg_catalog.format('one statement would %s %s rows, more than the limit of %s', verb, affected, row_limit));
        RETURN;
    END IF;
    -- At most row_limit rows changed: did the statement take every row of the table?
    IF operation = 'DELETE' THEN
        EXECUTE pg_catalog.format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) s', relation::regclass)
            INTO remaining;
        IF remaining = 0 THEN
            PERFORM datasafe.refuse_or_allow('mass-delete-all-rows', operation, rel, affected, row_limit,
                pg_catalog.format('one statement would delete all %s rows of the table', affected));
        END IF;
    ELSE
        EXECUTE pg_catalog.format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %s) s',
                                  relation::regclass, affected + 1) INTO remaining;
        IF remaining <= affected THEN
            PERFORM datasafe.refuse_or_allow('mass-update-all-rows', operation, rel, affected, row_limit,
                pg_catalog.format('one statement would update all %s rows of the table', affected));
        END IF;
    END IF;
END
""",
    ),
    (
        "attach(relation oid, weakened_is_tampering boolean)",
        "void",
        "plpgsql",
        """
DECLARE
    rel regclass := relation::regclass;
    tree boolean;
    enable_always text := '';
    trg record;
BEGIN
    -- A partitioned table, or one with inheritance children: its DELETE/UPDATE triggers count
    -- through a transition table (a plain table's counters do not see its children's rows).
    SELECT c.relkind = 'p' OR c.relhassubclass INTO tree FROM pg_catalog.pg_class c WHERE c.oid = relation;
    FOR trg IN
        SELECT w.name, w.timing, t.tgenabled, p.proname AS calls,
               CASE WHEN w.mass AND tree THEN 'guard_mass_change_tree' ELSE w.func END AS func,
               CASE WHEN w.mass AND tree THEN 'REFERENCING OLD TABLE AS datasafe_old_rows' ELSE '' END AS transition
          FROM (VALUES ('datasafe_guard_truncate', 'guard_truncate', 'BEFORE TRUNCATE', false),
                       ('datasafe_guard_delete_start', 'guard_mass_change_start', 'BEFORE DELETE', false),
                       ('datasafe_guard_delete', 'guard_mass_change', 'AFTER DELETE', true),
                       ('datasafe_guard_update_start', 'guard_mass_change_start', 'BEFORE UPDATE', false),
                       ('datasafe_guard_update', 'guard_mass_change', 'AFTER UPDATE', true))
               AS w (name, func, timing, mass)
          LEFT JOIN pg_catalog.pg_trigger t ON t.tgrelid = relation AND t.tgname = w.name
          LEFT JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    LOOP
        IF trg.tgenabled IS NULL THEN
            EXECUTE pg_catalog.format('CREATE TRIGGER %I %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION datasafe.%I()',
                                      trg.name, trg.timing, rel, trg.transition, trg.func);
        ELSIF trg.tgenabled IN ('D', 'R') AND weakened_is_tampering THEN
            PERFORM datasafe.refuse_or_allow('disable-guard', 'ALTER TABLE', datasafe.table_name(relation), NULL, NULL,
                pg_catalog.format('it would disable the guard''s trigger %s', trg.name));
            CONTINUE;
        ELSIF trg.calls = 'guard_mass_change' AND trg.func = 'guard_mass_change_tree' THEN
            -- the table gained a child table (INHERITS, INHERIT): count through it from now on
            EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I %s ON %s %s FOR EACH STATEMENT '
                                      || 'EXECUTE FUNCTION datasafe.%I()',
                                      trg.name, trg.timing, rel, trg.transition, trg.func);
        ELSIF trg.tgenabled = 'A' THEN
            CONTINUE;
        END IF;
        enable_always := enable_always || CASE WHEN enable_always = '' THEN '' ELSE ', ' END
                         || pg_catalog.format('ENABLE ALWAYS TRIGGER %I', trg.name);
    END LOOP;
    IF enable_always <> '' THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s %s', rel, enable_always);
    END IF;
END
""",
    ),
    (
        "guard_table(relation oid)",
        "boolean",
        "sql STABLE",
        """
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.oid = relation AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
                      AND datasafe.protected_schema(n.nspname))
""",
    ),
    (
        "attach_all()",
        "integer",
        "plpgsql",
        """
DECLARE
    relation oid;
    attached integer := 0;
BEGIN
    FOR relation IN
        SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND datasafe.protected_schema(n.nspname)
         ORDER BY c.oid
    LOOP
        PERFORM datasafe.attach(relation, false);
        attached := attached + 1;
    END LOOP;
    RETURN attached;
END
""",
    ),
    (
        "guard_ddl()",
        "event_trigger",
        "plpgsql",
        """
DECLARE
    cmd record;
    part oid;
BEGIN
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF cmd.classid = 'pg_catalog.pg_namespace'::regclass AND cmd.command_tag = 'CREATE SCHEMA' THEN
            PERFORM pg_catalog.set_config('datasafe.created_in_transaction',
                coalesce(pg_catalog.current_setting('datasafe.created_in_transaction', true), '')
                || ',n' || cmd.objid, true);
        ELSIF cmd.classid = 'pg_catalog.pg_class'::regclass
              AND cmd.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
              AND datasafe.guard_table(cmd.objid) THEN
            IF cmd.command_tag <> 'ALTER TABLE' THEN
                PERFORM pg_catalog.set_config('datasafe.created_in_transaction',
                    coalesce(pg_catalog.current_setting('datasafe.created_in_transaction', true), '')
                    || ',r' || cmd.objid, true);
            END IF;
            PERFORM datasafe.attach(cmd.objid, cmd.command_tag = 'ALTER TABLE');
            -- ATTACH PARTITION: the partitions of a partitioned table are guarded too.
            FOR part IN SELECT relid FROM pg_catalog.pg_partition_tree(cmd.objid) WHERE relid <> cmd.objid LOOP
                IF datasafe.guard_table(part) THEN
                    PERFORM datasafe.attach(part, false);
                END IF;
            END LOOP;
            -- INHERITS, INHERIT, PARTITION OF: every ancestor now has a child to count through.
            FOR part IN WITH RECURSIVE up (relid) AS (
                            SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = cmd.objid
                            UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.relid)
                        SELECT up.relid FROM up LOOP
                IF datasafe.guard_table(part) THEN
                    PERFORM datasafe.attach(part, false);
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END
""",
    ),
    (
        "guard_drop_start()",
        "event_trigger",
        "plpgsql",
        """
BEGIN
    IF TG_TAG = 'DROP OWNED' THEN
        PERFORM datasafe.refuse_or_allow('drop-owned', 'DROP OWNED', 'the role''s objects', NULL, NULL,
            'DROP OWNED drops every table the role owns, and the guard with them');
    ELSIF pg_catalog.current_query() ~* '\\mdatasafe\\M' THEN
        PERFORM datasafe.refuse_or_allow('drop-guard', TG_TAG, 'datasafe', NULL, NULL,
            'it would remove the guard (use the datasafe_dbguard playbook with state absent)');
    END IF;
END
""",
    ),
    (
        "guard_drop()",
        "event_trigger",
        "plpgsql",
        """
DECLARE
    obj record;
    refused integer := 0;
BEGIN
    FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        CONTINUE WHEN obj.is_temporary;
        IF obj.schema_name = 'datasafe' OR (obj.object_type = 'schema' AND obj.object_name = 'datasafe')
           OR (obj.object_type = 'trigger' AND obj.original AND obj.object_identity LIKE 'datasafe\\_guard\\_% on %')
           OR (obj.object_type = 'event trigger' AND obj.object_name LIKE 'datasafe\\_guard\\_%') THEN
            PERFORM datasafe.refuse_or_allow('drop-guard', 'DROP', obj.object_identity, NULL, NULL,
                pg_catalog.format('it would remove the guard''s %s %s '
                                  '(use the datasafe_dbguard playbook with state absent)',
                                  obj.object_type, obj.object_identity));
        ELSIF obj.object_type IN ('table', 'materialized view', 'foreign table')
              AND datasafe.protected_schema(obj.schema_name) AND NOT datasafe.created_here('r', obj.objid) THEN
            PERFORM datasafe.refuse_or_allow('drop-' || pg_catalog.replace(obj.object_type, ' ', '-'), 'DROP',
                obj.object_identity, NULL, NULL,
                pg_catalog.format('it would drop the %s %s with all its rows', obj.object_type, obj.object_identity));
        ELSIF obj.object_type = 'table column' AND datasafe.protected_schema(obj.schema_name)
              AND NOT datasafe.created_here('r', obj.objid) THEN
            PERFORM datasafe.refuse_or_allow('drop-column', 'DROP', obj.object_identity, NULL, NULL,
                pg_catalog.format('it would drop the column %s and its data', obj.object_identity));
        ELSIF obj.object_type = 'schema' AND datasafe.protected_schema(obj.object_name)
              AND NOT datasafe.created_here('n', obj.objid) THEN
            PERFORM datasafe.refuse_or_allow('drop-schema', 'DROP', obj.object_identity, NULL, NULL,
                pg_catalog.format('it would drop the schema %s', obj.object_identity));
        END IF;
    END LOOP;
END
""",
    ),
]

FUNCTION_NAMES = [signature.split("(")[0] for signature, _, _, _ in FUNCTIONS]

SETUP_SQL = """
CREATE SCHEMA IF NOT EXISTS datasafe;
COMMENT ON SCHEMA datasafe IS 'datasafe: the guard against TRUNCATE, DROP and mass DELETE/UPDATE (docs/guards.md)';
CREATE TABLE IF NOT EXISTS datasafe.settings (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS datasafe.table_limits (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    max_rows bigint CHECK (max_rows > 0),  -- NULL: no mass-change rule for this table
    PRIMARY KEY (schema_name, table_name)
);
CREATE TABLE IF NOT EXISTS datasafe.audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    txid bigint NOT NULL,
    session_user_name text NOT NULL,
    application_name text,
    client_addr inet,
    rule text NOT NULL,
    operation text NOT NULL,
    object_name text NOT NULL,
    affected_rows bigint,
    reason text NOT NULL,
    statement text
);
GRANT USAGE ON SCHEMA datasafe TO PUBLIC;
GRANT SELECT ON datasafe.settings, datasafe.table_limits TO PUBLIC;
"""


def function_sql(signature, returns, language_and_options, body):
    language, _, options = language_and_options.partition(" ")
    return "CREATE OR REPLACE FUNCTION datasafe.%s RETURNS %s LANGUAGE %s %s AS $datasafe$%s$datasafe$;\n" % (
        signature,
        returns,
        language,
        options,
        body,
    )


def body_md5(body):
    return hashlib.md5(body.encode("utf-8")).hexdigest()  # noqa: S324 - compared with PostgreSQL's md5(prosrc)


EXPECTED_MD5 = {signature.split("(")[0]: body_md5(body) for signature, _, _, body in FUNCTIONS}
# The version stored in the database: the guard's version and a digest of its code, so a
# datasafe release that changes one function body upgrades every installed guard.
CODE_DIGEST = hashlib.sha256("".join(sorted(EXPECTED_MD5.values())).encode()).hexdigest()[:12]
INSTALLED_VERSION = "%s+%s" % (VERSION, CODE_DIGEST)


class DbGuardError(Exception):
    """The guard could not be installed, checked or removed; the message says why and what to do."""


def literal(text):
    return "'%s'" % str(text).replace("'", "''")


# --- settings ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def normalize_settings(default_max_rows=DEFAULT_MAX_ROWS, table_limits=None, schemas=None):
    """The desired settings, validated: ``{"default_max_rows": "1000", "schemas": "*", "table_limits": {...}}``.

    ``table_limits`` maps ``table`` or ``schema.table`` to a whole number >= 1 or ``"off"`` (no
    mass-change rule for that table; TRUNCATE and DROP stay refused). Raises ValueError naming
    the bad entry and the fix.
    """
    try:
        default = int(default_max_rows)
    except (TypeError, ValueError):
        default = 0
    if default < 1 or str(default_max_rows).strip() != str(default):
        raise ValueError(
            "default_max_rows must be a whole number of rows >= 1 (the most one statement may change), not %r"
            % (default_max_rows,)
        )
    schemas = list(schemas or [])
    for name in schemas:
        if not isinstance(name, str) or not _PLAIN.match(name) or name in ("datasafe", "pg_catalog"):
            raise ValueError(
                "schemas: %r is not a schema the guard can protect: give plain schema names "
                "(not datasafe or PostgreSQL's own), or an empty list for every schema" % (name,)
            )
    limits = {}
    for table, value in sorted((table_limits or {}).items()):
        parts = str(table).split(".")
        if len(parts) == 1:
            parts = ["public"] + parts
        if len(parts) != 2 or not all(_PLAIN.match(p) for p in parts):
            raise ValueError("table_limits: %r is not a plain table name: use table or schema.table" % (table,))
        if isinstance(value, str) and value.strip().lower() == "off":
            limits[".".join(parts)] = None
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if isinstance(value, bool) or number < 1 or str(value).strip() != str(number):
            raise ValueError(
                "table_limits: %s = %r: give a whole number of rows >= 1, or 'off' to switch the "
                "mass DELETE/UPDATE rule off for this table" % (table, value)
            )
        limits[".".join(parts)] = number
    return {
        "default_max_rows": str(default),
        "schemas": ",".join(sorted(set(schemas))) if schemas else "*",
        "table_limits": limits,
    }


# --- check ---------------------------------------------------------------------------------------

# The catalogs as they are, read without calling any of the guard's functions (they may be the
# thing that was tampered with). Schema selection is repeated here in SQL from the settings the
# caller read first.
_CATALOG_SQL = """
SET search_path = pg_catalog;  -- pg_get_triggerdef then qualifies every table name
SELECT json_build_object(
  'schema', EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'datasafe'),
  'settings_table', to_regclass('datasafe.settings') IS NOT NULL,
  'track_counts', current_setting('track_counts'),
  'functions', coalesce((SELECT json_object_agg(p.proname, md5(p.prosrc)) FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'datasafe'), '{}'),
  'event_triggers', coalesce((SELECT json_object_agg(e.evtname, json_build_object(
                 'enabled', e.evtenabled, 'event', e.evtevent,
                 'function', (SELECT n.nspname || '.' || p.proname FROM pg_proc p
                               JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = e.evtfoid)))
                 FROM pg_event_trigger e WHERE e.evtname LIKE 'datasafe\\_%'), '{}'),
  'tables', coalesce((SELECT json_agg(json_build_object(
                 'table', format('%I.%I', n.nspname, c.relname), 'schema', n.nspname,
                 'tree', c.relkind = 'p' OR c.relhassubclass,
                 'triggers', (SELECT coalesce(json_object_agg(t.tgname, json_build_object(
                                 'enabled', t.tgenabled, 'definition', pg_get_triggerdef(t.oid),
                                 'function', (SELECT pn.nspname || '.' || p.proname FROM pg_proc p
                                               JOIN pg_namespace pn ON pn.oid = p.pronamespace
                                              WHERE p.oid = t.tgfoid))), '{}')
                                FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname LIKE 'datasafe\\_guard\\_%'))
                 ORDER BY n.nspname, c.relname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'datasafe')
                  AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'), '[]')
);
"""

_SETTINGS_SQL = """
SELECT json_build_object(
  'settings', coalesce((SELECT json_object_agg(key, value) FROM datasafe.settings), '{}'),
  'table_limits', coalesce((SELECT json_object_agg(schema_name || '.' || table_name, max_rows)
                             FROM datasafe.table_limits), '{}'),
  'audit_rows', CASE WHEN to_regclass('datasafe.audit') IS NULL THEN 0
                     ELSE (SELECT count(*) FROM datasafe.audit) END
);
"""


def _json_query(run, cont, db, user, sql, stage):
    rows = container.query(run, cont, db, user, sql, stage=stage)
    if not rows or not rows[-1]:
        raise DbGuardError("%s: psql returned nothing" % stage)
    return json.loads(rows[-1][0])


def read_state(run, cont, db, user):
    """The guard's objects as the catalogs hold them (and its settings when the table exists)."""
    try:
        state = _json_query(run, cont, db, user, _CATALOG_SQL, "read the guard's catalog entries")
        state["settings"], state["table_limits"], state["audit_rows"] = {}, {}, 0
        if state["settings_table"]:
            state.update(_json_query(run, cont, db, user, _SETTINGS_SQL, "read the guard's settings"))
    except container.ContainerError as exc:
        raise DbGuardError("could not read the guard's state in %s/%s: %s" % (cont, db, exc)) from exc
    return state


def _protected(schema, settings):
    chosen = settings.get("schemas", "*")
    return chosen == "*" or schema in chosen.split(",")


def judge(state):
    """The check's verdict on ``state`` (from :func:`read_state`): a dict of plain results.

    ``installed``: the guard's version is recorded (a guard half removed by hand still counts);
    ``enabled``: every piece is present and ``ENABLE ALWAYS``; ``tampered``: something of an
    installed guard is missing, disabled or replaced; ``problems`` names each, one line each.
    """
    settings = state.get("settings") or {}
    version = settings.get("version")
    functions = state.get("functions") or {}
    events = state.get("event_triggers") or {}
    installed = bool(version) or bool(events) or any(name in functions for name in EXPECTED_MD5)
    problems, tables, stale = [], [], []
    outdated = bool(version) and version != INSTALLED_VERSION
    if installed:
        for name, md5 in sorted(EXPECTED_MD5.items()):
            if outdated:
                continue  # an older guard has older bodies, and fewer functions: the upgrade replaces them all
            if name not in functions:
                problems.append("function datasafe.%s is missing (dropped)" % name)
            elif functions[name] != md5:
                problems.append("function datasafe.%s was replaced: its body differs from datasafe's" % name)
        if outdated:
            problems.append(
                "the installed guard is version %s, this datasafe's is %s: upgrade it with playbooks/dbguard.yml"
                % (version, INSTALLED_VERSION)
            )
        for name, (_event, function, _when) in sorted(EVENT_TRIGGERS.items()):
            found = events.get(name)
            if not found:
                problems.append("event trigger %s is missing (dropped)" % name)
            elif found.get("enabled") != "A" or found.get("function") != "datasafe." + function:
                problems.append(
                    "event trigger %s is %s"
                    % (
                        name,
                        "disabled" if found.get("enabled") == "D" else "not ENABLE ALWAYS, or calls another function",
                    )
                )
        for table in state.get("tables") or []:
            if not _protected(table["schema"], settings):
                continue
            tables.append(table["table"])
            have = table.get("triggers") or {}
            for name in sorted(TRIGGERS):
                found = have.get(name)
                accepted = trigger_definitions(name, table["table"], table.get("tree"))
                if not found and outdated:
                    continue  # an older guard had fewer triggers: the upgrade creates this one
                if not found:
                    problems.append("table %s has no %s trigger" % (table["table"], name))
                elif found.get("definition") not in accepted.values() and outdated:
                    stale.append([name, table["table"]])  # an older guard's definition: the upgrade recreates it
                elif found.get("function") not in accepted:
                    problems.append(
                        "trigger %s on %s calls %s%s"
                        % (
                            name,
                            table["table"],
                            found.get("function"),
                            ", which does not count the rows of its child tables"
                            if found.get("function") in trigger_definitions(name, table["table"], False)
                            else "",
                        )
                    )
                elif found.get("definition") != accepted[found["function"]]:
                    problems.append(
                        "trigger %s on %s was redefined: %s" % (name, table["table"], found.get("definition"))
                    )
                elif found.get("enabled") != "A":
                    problems.append(
                        "trigger %s on %s is %s"
                        % (
                            name,
                            table["table"],
                            {"D": "disabled", "R": "enabled for replicas only", "O": "not ENABLE ALWAYS"}.get(
                                found.get("enabled"), "in state %r" % found.get("enabled")
                            ),
                        )
                    )
        if state.get("track_counts", "on") != "on":
            problems.append(
                "track_counts is %s: the guard cannot count the rows a statement changes and refuses every "
                "DELETE and UPDATE; set track_counts = on (postgresql.conf or ALTER SYSTEM)" % state.get("track_counts")
            )
        if not version:
            problems.append("the guard's version is not recorded in datasafe.settings")
    return {
        "installed": installed,
        "version": version,
        "expected_version": INSTALLED_VERSION,
        "current": installed and version == INSTALLED_VERSION,
        "enabled": installed and not problems,
        "tampered": bool(problems),
        "problems": problems,
        "stale_triggers": stale,
        "tables": tables,
        "settings": {
            "default_max_rows": settings.get("default_max_rows"),
            "schemas": settings.get("schemas"),
            "table_limits": state.get("table_limits") or {},
        },
        "audit_rows": state.get("audit_rows", 0),
    }


def check(run, cont, db, user):
    return judge(read_state(run, cont, db, user))


def describe(verdict):
    """One line for a failure message: what was changed."""
    if not verdict["installed"]:
        return "the guard is not installed"
    text = "; ".join(verdict["problems"][:10])
    if len(verdict["problems"]) > 10:
        text += "; and %d more" % (len(verdict["problems"]) - 10)
    return text


_REFUSAL = re.compile(r"datasafe guard: refused [^\n]*")


def refusals_since(run, cont, since):
    """The guard's refusals (its RAISE LOG lines) in the server log since ``since`` (a Unix time or
    anything ``docker logs --since`` takes), oldest first, at most the last ten."""
    rc, out, err = run(["docker", "logs", "--since", str(since), cont])
    if rc != 0:
        raise DbGuardError("could not read the server log of %s (exit %s): %s" % (cont, rc, (err or "").strip()))
    return _REFUSAL.findall((out or "") + "\n" + (err or ""))[-10:]


def checked_failure(verdict, required=False):
    """The failure message of a check that must pass, or None: an installed guard must be complete,
    enabled and current; a required one must be installed."""
    if not verdict["installed"]:
        if required:
            return (
                "the guard inside PostgreSQL is required (datasafe_dbguard_required) but not installed: "
                "run playbooks/dbguard.yml"
            )
        return None
    if verdict["problems"] and verdict["current"] is False and len(verdict["problems"]) == 1 and verdict["version"]:
        return "the guard inside PostgreSQL is outdated: %s" % verdict["problems"][0]
    if verdict["problems"]:
        return (
            "THE GUARD INSIDE POSTGRESQL WAS CHANGED: %s. Someone disabled or removed part of it; find out who "
            "(server log, datasafe.audit), then repair it with playbooks/dbguard.yml" % describe(verdict)
        )
    return None


METRICS = [
    metrics.gauge("datasafe_dbguard_ok", "1 when the guard inside PostgreSQL is installed, complete and enabled."),
    metrics.gauge("datasafe_dbguard_installed", "1 when the guard inside PostgreSQL is installed."),
    metrics.gauge("datasafe_dbguard_problems", "Changes found in the installed guard (disabled or missing parts)."),
    metrics.gauge("datasafe_dbguard_audit_rows", "Break-glass uses recorded in datasafe.audit."),
    metrics.gauge("datasafe_dbguard_last_check_timestamp_seconds", "When the guard was last checked."),
]


def write_metrics(path, database, verdict, now):
    labels = metrics.labels_key((("database", database),))
    values = {
        "datasafe_dbguard_ok": int(verdict["enabled"]),
        "datasafe_dbguard_installed": int(verdict["installed"]),
        "datasafe_dbguard_problems": len(verdict["problems"]),
        "datasafe_dbguard_audit_rows": int(verdict.get("audit_rows") or 0),
        "datasafe_dbguard_last_check_timestamp_seconds": int(now),
    }

    def change(samples):
        for name, value in values.items():
            samples[(name, labels)] = value

    return metrics.update(path, METRICS, change)


# --- install / upgrade / remove ------------------------------------------------------------------


def plan_install(verdict, desired):
    """What an install would change, one line each; empty when the guard is current and as desired."""
    actions = []
    if not verdict["installed"]:
        actions.append("install the guard (version %s)" % INSTALLED_VERSION)
    elif not verdict["current"]:
        actions.append("upgrade the guard from %s to %s" % (verdict["version"], INSTALLED_VERSION))
    if verdict["installed"]:
        actions += ["repair: %s" % p for p in verdict["problems"] if "version" not in p]
    settings = verdict["settings"]
    if verdict["installed"]:
        if settings.get("default_max_rows") != desired["default_max_rows"]:
            actions.append(
                "set the default limit to %s rows per statement (was %s)"
                % (desired["default_max_rows"], settings.get("default_max_rows"))
            )
        if settings.get("schemas") != desired["schemas"]:
            actions.append("protect schemas %s (was %s)" % (desired["schemas"], settings.get("schemas")))
        if settings.get("table_limits") != desired["table_limits"]:
            actions.append("set the per-table limits to %s" % json.dumps(desired["table_limits"], sort_keys=True))
    return actions


def install_sql(desired, redefined=()):
    """The whole install or upgrade, one transaction: idempotent; nothing is dropped but guard
    triggers someone redefined (``redefined``: ``(trigger, table)`` pairs, the table as the check
    names it), which are dropped under break-glass (so the audit records it) and created anew."""
    parts = ["BEGIN;\n", SETUP_SQL]
    if redefined:
        parts.append("SET LOCAL datasafe.break_glass = 'datasafe_dbguard: recreate redefined guard triggers';\n")
    for trigger, table in redefined:
        # the table name comes from PostgreSQL's format('%I.%I'); the trigger is one of TRIGGERS
        parts.append("DROP TRIGGER %s ON %s;\n" % (container.quote_ident(trigger), table))
    if redefined:
        parts.append("RESET datasafe.break_glass;\n")
    parts += [function_sql(*f) for f in FUNCTIONS]
    parts.append(
        "INSERT INTO datasafe.settings (key, value) VALUES ('version', %s), ('default_max_rows', %s), ('schemas', %s)\n"
        "  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;\n"
        % (literal(INSTALLED_VERSION), literal(desired["default_max_rows"]), literal(desired["schemas"]))
    )
    parts.append("DELETE FROM datasafe.table_limits;\n")
    for table, limit in sorted(desired["table_limits"].items()):
        schema, name = table.split(".")
        parts.append(
            "INSERT INTO datasafe.table_limits VALUES (%s, %s, %s);\n"
            % (literal(schema), literal(name), "NULL" if limit is None else int(limit))
        )
    for name, (event, function, when) in sorted(EVENT_TRIGGERS.items()):
        parts.append(
            "DO $do$ BEGIN\n"
            "  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = %(lit)s) THEN\n"
            "    CREATE EVENT TRIGGER %(name)s ON %(event)s %(when)s EXECUTE FUNCTION datasafe.%(function)s();\n"
            "  END IF;\n"
            "END $do$;\n"
            "ALTER EVENT TRIGGER %(name)s ENABLE ALWAYS;\n"
            % {"lit": literal(name), "name": name, "event": event, "function": function, "when": when}
        )
    parts.append("SELECT datasafe.attach_all();\n")
    parts.append("COMMIT;\n")
    return "".join(parts)


# Removal keeps datasafe.audit and datasafe.settings: the break-glass history is data. The
# event triggers go first (commands on event triggers fire none), so nothing refuses the rest.
REMOVE_SQL_HEAD = "BEGIN;\n"


def remove_sql(state):
    parts = [REMOVE_SQL_HEAD]
    for name in sorted(state.get("event_triggers") or {}):
        parts.append("DROP EVENT TRIGGER IF EXISTS %s;\n" % container.quote_ident(name))
    for table in state.get("tables") or []:
        for name in sorted(table.get("triggers") or {}):
            # table["table"] was quoted by PostgreSQL's format('%I.%I') in _CATALOG_SQL
            parts.append("DROP TRIGGER IF EXISTS %s ON %s;\n" % (container.quote_ident(name), table["table"]))
    for name in FUNCTION_NAMES:
        parts.append(
            "DO $do$ DECLARE f regprocedure; BEGIN\n"
            "  FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace\n"
            "           WHERE n.nspname = 'datasafe' AND p.proname = %s LOOP\n"
            "    EXECUTE format('DROP FUNCTION %%s', f);\n"
            "  END LOOP;\n"
            "END $do$;\n" % literal(name)
        )
    parts.append("DELETE FROM datasafe.settings WHERE key = 'version';\n")
    parts.append("COMMIT;\n")
    return "".join(parts)


def _run_script(run, cont, db, user, sql, stage):
    rc, _, err = run(container.psql_argv(cont, db, user), data=sql)
    if rc != 0:
        raise DbGuardError("%s failed in %s/%s (exit %s): %s" % (stage, cont, db, rc, (err or "").strip()[-2000:]))


_REDEFINED = re.compile(r"^trigger (\S+) on (\S+) was redefined: ")


def install(run, cont, db, user, desired, check_mode=False):
    """Install, upgrade or repair the guard; returns ``{changed, actions, check}``."""
    before = check(run, cont, db, user)
    actions = plan_install(before, desired)
    if not actions or check_mode:
        return {"changed": bool(actions), "actions": actions, "check": before}
    found = (_REDEFINED.match(problem) for problem in before["problems"])
    redefined = [(m.group(1), m.group(2)) for m in found if m and m.group(1) in TRIGGERS]
    redefined += [tuple(pair) for pair in before.get("stale_triggers") or []]
    _run_script(run, cont, db, user, install_sql(desired, redefined), "installing the guard")
    after = check(run, cont, db, user)
    if after["problems"] or not after["current"]:
        raise DbGuardError(
            "the guard was installed but its check still fails: %s" % describe(after)
        )  # pragma: no cover - a real install either fails or is complete
    return {"changed": True, "actions": actions, "check": after}


def remove(run, cont, db, user, check_mode=False):
    """Remove the guard's triggers, event triggers and functions (audit and settings stay)."""
    state = read_state(run, cont, db, user)
    before = judge(state)
    leftovers = bool(state.get("event_triggers")) or any(n in (state.get("functions") or {}) for n in FUNCTION_NAMES)
    leftovers = leftovers or any(t.get("triggers") for t in state.get("tables") or [])
    actions = []
    if leftovers or before["installed"]:
        actions.append("remove the guard's triggers, event triggers and functions (datasafe.audit is kept)")
    if not actions or check_mode:
        return {"changed": bool(actions), "actions": actions, "check": before}
    _run_script(run, cont, db, user, remove_sql(state), "removing the guard")
    return {"changed": True, "actions": actions, "check": check(run, cont, db, user)}
