"""The SQL guard: refuse statements that destroy data, read with PostgreSQL's own parser (pglast).

Text tricks (comments, casing, quoting, several statements in one string, a DELETE hidden in
a CTE, in PREPARE, in EXPLAIN ANALYZE or in a rule) do not matter: the guard walks the parse
tree, where they have all disappeared. What cannot be read completely (a parse error, a psql
meta-command, a DO block, EXECUTE, a function body in a language the guard cannot parse) is
refused, because the guard cannot vouch for it.

``judge(sql) -> [Finding]``: an empty list means allowed.
"""

import decimal
import re

from ansible.module_utils.datasafe.guard import Finding, dedupe

try:
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    HAS_PGLAST, PGLAST_IMPORT_ERROR = True, None
except ImportError as _exc:  # the modules turn this into missing_required_lib (fail closed)
    HAS_PGLAST, PGLAST_IMPORT_ERROR = False, _exc

UNKNOWN = object()  # a value the guard cannot compute without the rows

# DROP of these object types destroys stored rows.
_DROP_RULES = {
    "OBJECT_TABLE": "sql-drop-table",
    "OBJECT_FOREIGN_TABLE": "sql-drop-table",
    "OBJECT_SCHEMA": "sql-drop-schema",
    "OBJECT_MATVIEW": "sql-drop-matview",
}
# DROP ... CASCADE is harmless for these (only views/constraints depend on them).
_CASCADE_OK = {"OBJECT_VIEW", "OBJECT_INDEX"}

# Statements PostgreSQL refuses to run inside a transaction block (safe_sql's check mode needs to know).
_NON_TRANSACTIONAL = (
    "VacuumStmt",
    "CreatedbStmt",
    "DropdbStmt",
    "AlterSystemStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "ReindexStmt",
    "CreateSubscriptionStmt",
    "DropSubscriptionStmt",
)


def available():
    return HAS_PGLAST


def _stream(node):
    try:
        return RawStream()(node)
    except Exception:  # deparser gaps: fall back to the node repr, still stable for comparison
        return repr(node)


def _name(n):
    return type(n).__name__


def _enum_name(value):
    return getattr(value, "name", str(value))


def split_statements(sql):
    """The statements of ``sql`` as PostgreSQL would see them (comments and empty ones dropped)."""
    return list(pglast.split(sql, with_parser=True))


def _walk(node):
    """Every AST node under ``node`` (itself included), depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(reversed(n))
        elif isinstance(n, ast.Node):
            yield n
            for attr in n:  # pglast nodes iterate over their attribute names
                value = getattr(n, attr, None)
                if isinstance(value, (ast.Node, list, tuple)):
                    stack.append(value)


# --------------------------------------------------------------------------------------------
# Constant folding: is a WHERE clause the same for every row?
# --------------------------------------------------------------------------------------------


def _const_value(c):
    if c.isnull:
        return None
    v = c.val
    if isinstance(v, ast.Integer):
        return v.ival
    if isinstance(v, ast.Float):
        return decimal.Decimal(v.fval)
    if isinstance(v, ast.Boolean):
        return bool(v.boolval)
    if isinstance(v, ast.String):
        return v.sval
    return UNKNOWN


_TRUE_TEXT = {"t", "true", "y", "yes", "on", "1"}
_FALSE_TEXT = {"f", "false", "n", "no", "off", "0"}


def _to_bool(v):
    if v is None or v is UNKNOWN or isinstance(v, bool):
        return v
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE_TEXT:
            return True
        if s in _FALSE_TEXT:
            return False
        return UNKNOWN
    if isinstance(v, int):
        return v != 0
    return UNKNOWN


def _to_number(v):
    if isinstance(v, bool):
        return UNKNOWN
    if isinstance(v, (int, decimal.Decimal)):
        return v
    if isinstance(v, str):
        try:
            d = decimal.Decimal(v.strip())
            return int(d) if d == d.to_integral_value() and "." not in v else d
        except decimal.InvalidOperation:
            return UNKNOWN
    return UNKNOWN


def _type_name(tn):
    return ".".join(s.sval for s in tn.names if isinstance(s, ast.String)).lower().replace("pg_catalog.", "")


def _coerce_pair(a, b):
    """PostgreSQL resolves an untyped literal to the other side's type; approximate that."""
    if isinstance(a, bool) or isinstance(b, bool):
        return _to_bool(a), _to_bool(b)
    if isinstance(a, str) and not isinstance(b, str):
        return _to_number(a), b
    if isinstance(b, str) and not isinstance(a, str):
        return a, _to_number(b)
    return a, b


_CMP = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def _like_to_regex(pattern):
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "^" + "".join(out) + "$"


class Folder:
    """Three-valued constant folding (True, False, None for NULL, UNKNOWN) of an expression.

    ``target`` is the relation name of the DELETE/UPDATE, used to see ``id IN (SELECT id FROM
    same_table)``. Comparing an expression with itself (``x = x``) counts as true: it holds
    for every row where x is not NULL, which is no restriction worth the name.
    """

    def __init__(self, target=None):
        self.target = target

    def fold(self, n):
        method = getattr(self, "_fold_" + _name(n), None)
        if method is None:
            return UNKNOWN
        try:
            return method(n)
        except (TypeError, ValueError, ArithmeticError, decimal.InvalidOperation):
            return UNKNOWN

    def _fold_A_Const(self, n):
        return _const_value(n)

    def _fold_TypeCast(self, n):
        v = self.fold(n.arg)
        if v is UNKNOWN or v is None:
            return v
        t = _type_name(n.typeName)
        if t in ("bool", "boolean"):
            return _to_bool(v)
        if t in ("int", "int2", "int4", "int8", "integer", "smallint", "bigint", "numeric", "decimal"):
            return _to_number(v)
        if t in ("text", "varchar", "bpchar", "char", "name", "character varying"):
            return str(v).lower() if isinstance(v, bool) else str(v)
        return UNKNOWN

    def _fold_BoolExpr(self, n):
        op = _enum_name(n.boolop)
        vals = [_to_bool(self.fold(a)) for a in n.args]
        if op == "NOT_EXPR":
            v = vals[0]
            return v if v is None or v is UNKNOWN else not v
        if op == "AND_EXPR":
            if any(v is False for v in vals):
                return False
            if all(v is True for v in vals):
                return True
            return None if all(v is True or v is None for v in vals) else UNKNOWN
        # OR
        if any(v is True for v in vals) or self._null_tautology(n.args):
            return True
        if all(v is False for v in vals):
            return False
        return None if all(v is False or v is None for v in vals) else UNKNOWN

    def _null_tautology(self, args):
        """``x IS NULL OR x IS NOT NULL`` is true for every row."""
        seen = {}
        for a in args:
            if isinstance(a, ast.NullTest):
                seen.setdefault(_stream(a.arg), set()).add(_enum_name(a.nulltesttype))
        return any(len(kinds) == 2 for kinds in seen.values())

    def _same(self, a, b):
        return a is not None and b is not None and _stream(a) == _stream(b)

    def _fold_A_Expr(self, n):
        kind = _enum_name(n.kind)
        op = n.name[-1].sval if n.name else None
        if kind == "AEXPR_OP":
            if n.lexpr is None:  # prefix operator
                v = self.fold(n.rexpr)
                if op == "-" and v is not UNKNOWN and v is not None:
                    return -_to_number(v)
                return v if op == "+" else UNKNOWN
            if op in _CMP and self._same(n.lexpr, n.rexpr):
                return op in ("=", "<=", ">=")
            if op in ("~", "~*") and self._match_all_regex(n.rexpr):
                return True
            a, b = self.fold(n.lexpr), self.fold(n.rexpr)
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            if a is None or b is None:
                return None
            if op == "||":
                return str(a) + str(b)
            a, b = _coerce_pair(a, b)
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            if op in _CMP:
                return _CMP[op](a, b)
            if op in _ARITH:
                return _ARITH[op](_to_number(a), _to_number(b))
            return UNKNOWN
        if kind == "AEXPR_IN":
            items = n.rexpr if isinstance(n.rexpr, (list, tuple)) else [n.rexpr]
            if any(self._same(n.lexpr, i) for i in items):
                return op == "="
            a = self.fold(n.lexpr)
            vals = [self.fold(i) for i in items]
            if a is UNKNOWN or any(v is UNKNOWN for v in vals):
                return UNKNOWN
            hit = any(_CMP["="](*_coerce_pair(a, v)) for v in vals if v is not None and a is not None)
            return hit if op == "=" else not hit
        if kind in ("AEXPR_LIKE", "AEXPR_ILIKE"):
            negated = op.startswith("!")
            pattern = self.fold(n.rexpr)
            if isinstance(pattern, str) and pattern and set(pattern) == {"%"}:
                return not negated
            value = self.fold(n.lexpr)
            if isinstance(pattern, str) and isinstance(value, str):
                flags = re.S | (re.I if kind == "AEXPR_ILIKE" else 0)
                hit = re.match(_like_to_regex(pattern), value, flags) is not None
                return hit != negated
            return UNKNOWN
        if kind in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM"):
            lo, hi = n.rexpr
            negated = "NOT" in kind
            if self._same(n.lexpr, lo) and self._same(n.lexpr, hi):
                return not negated
            a, low, high = self.fold(n.lexpr), self.fold(lo), self.fold(hi)
            if UNKNOWN in (a, low, high) or None in (a, low, high):
                return UNKNOWN if UNKNOWN in (a, low, high) else None
            a, low = _coerce_pair(a, low)
            a, high = _coerce_pair(a, high)
            if "SYM" in kind and low > high:
                low, high = high, low
            return (low <= a <= high) != negated
        if kind in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT"):
            distinct = kind == "AEXPR_DISTINCT"
            if self._same(n.lexpr, n.rexpr):
                return not distinct
            a, b = self.fold(n.lexpr), self.fold(n.rexpr)
            if a is UNKNOWN or b is UNKNOWN:
                return UNKNOWN
            a, b = _coerce_pair(a, b) if a is not None and b is not None else (a, b)
            return (a != b) if distinct else (a == b)
        return UNKNOWN

    def _match_all_regex(self, pattern_node):
        pattern = self.fold(pattern_node)
        return isinstance(pattern, str) and re.fullmatch(r"[\^]?(\.\*)*[$]?", pattern) is not None

    def _fold_NullTest(self, n):
        v = self.fold(n.arg)
        if v is UNKNOWN:
            return UNKNOWN
        is_null = v is None
        return is_null if _enum_name(n.nulltesttype) == "IS_NULL" else not is_null

    def _fold_BooleanTest(self, n):
        v = _to_bool(self.fold(n.arg))
        if v is UNKNOWN:
            return UNKNOWN
        kind = _enum_name(n.booltesttype)
        return {
            "IS_TRUE": v is True,
            "IS_NOT_TRUE": v is not True,
            "IS_FALSE": v is False,
            "IS_NOT_FALSE": v is not False,
            "IS_UNKNOWN": v is None,
            "IS_NOT_UNKNOWN": v is not None,
        }.get(kind, UNKNOWN)

    def _fold_CoalesceExpr(self, n):
        for a in n.args:
            v = self.fold(a)
            if v is UNKNOWN or v is not None:
                return v
        return None

    def _fold_MinMaxExpr(self, n):
        vals = [self.fold(a) for a in n.args]
        if any(v is UNKNOWN for v in vals):
            return UNKNOWN
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return (max if _enum_name(n.op) == "IS_GREATEST" else min)(vals)

    def _fold_CaseExpr(self, n):
        subject = self.fold(n.arg) if n.arg is not None else None
        if subject is UNKNOWN:
            return UNKNOWN
        for when in n.args:
            if n.arg is not None:
                w = self.fold(when.expr)
                if w is UNKNOWN:
                    return UNKNOWN
                cond = None if w is None or subject is None else _CMP["="](*_coerce_pair(subject, w))
            else:
                cond = _to_bool(self.fold(when.expr))
            if cond is UNKNOWN:
                return UNKNOWN
            if cond is True:
                return self.fold(when.result)
        return self.fold(n.defresult) if n.defresult is not None else None

    def _fold_SubLink(self, n):
        kind = _enum_name(n.subLinkType)
        sel = n.subselect
        if not isinstance(sel, ast.SelectStmt) or sel.valuesLists or _enum_name(sel.op) != "SETOP_NONE":
            return UNKNOWN
        if kind == "EXISTS_SUBLINK" and not sel.fromClause and sel.havingClause is None and sel.limitCount is None:
            w = _to_bool(self.fold(sel.whereClause)) if sel.whereClause is not None else True
            return True if w is True else (False if w in (False, None) else UNKNOWN)
        if kind == "EXPR_SUBLINK" and not sel.fromClause and sel.whereClause is None and len(sel.targetList) == 1:
            return self.fold(sel.targetList[0].val)
        if kind == "ANY_SUBLINK" and self._self_subquery(n.testexpr, sel):
            return True
        return UNKNOWN

    def _self_subquery(self, testexpr, sel):
        """``col IN (SELECT col FROM <target>)`` without restriction matches every row."""
        if self.target is None or not isinstance(testexpr, ast.ColumnRef):
            return False
        if len(sel.fromClause or ()) != 1 or not isinstance(sel.fromClause[0], ast.RangeVar):
            return False
        if sel.whereClause is not None or sel.havingClause is not None or sel.limitCount is not None:
            return False
        if sel.fromClause[0].relname != self.target or len(sel.targetList) != 1:
            return False
        inner = sel.targetList[0].val
        return isinstance(inner, ast.ColumnRef) and _last_field(inner) == _last_field(testexpr)


def _last_field(colref):
    f = colref.fields[-1]
    return f.sval if isinstance(f, ast.String) else "*"


def fold(expr, target=None):
    """Constant value of an expression: True, False, None (NULL) or UNKNOWN."""
    return Folder(target).fold(expr)


def _colrefs(expr, inside_sublinks):
    """ColumnRefs of ``expr``; outside sublinks only unless ``inside_sublinks``."""
    refs, stack = [], [expr]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
        elif isinstance(n, ast.Node):
            if isinstance(n, ast.ColumnRef):
                refs.append(n)
                continue
            if isinstance(n, ast.SubLink) and not inside_sublinks:
                stack.append(n.testexpr)
                continue
            for attr in n:
                value = getattr(n, attr, None)
                if isinstance(value, (ast.Node, list, tuple)):
                    stack.append(value)
    return refs


def _row_specific(where, target_names):
    """Does the WHERE clause look at the target's rows at all?

    Column references outside subqueries do. Inside subqueries, only references that may be
    correlated with the target do: qualified by the target's name or alias, or unqualified.
    """
    if isinstance(where, ast.CurrentOfExpr) or any(isinstance(n, ast.CurrentOfExpr) for n in _walk(where)):
        return True
    if _colrefs(where, inside_sublinks=False):
        return True
    for ref in _colrefs(where, inside_sublinks=True):
        qualifier = [f.sval for f in ref.fields[:-1] if isinstance(f, ast.String)]
        if not qualifier or qualifier[-1] in target_names:
            return True
    return False


def _is_column(n):
    while isinstance(n, ast.TypeCast):
        n = n.arg
    return isinstance(n, ast.ColumnRef)


def _restricts(expr, folder):
    """For DELETE ... USING / UPDATE ... FROM: does the WHERE do more than join?"""
    v = _to_bool(folder.fold(expr))
    if v is True:
        return False
    if v in (False, None):
        return True  # matches no row at all
    if isinstance(expr, ast.BoolExpr):
        op = _enum_name(expr.boolop)
        if op == "AND_EXPR":
            return any(_restricts(a, folder) for a in expr.args)
        if op == "OR_EXPR":
            return all(_restricts(a, folder) for a in expr.args)
    if isinstance(expr, ast.A_Expr) and _enum_name(expr.kind) == "AEXPR_OP":
        if _is_column(expr.lexpr) and _is_column(expr.rexpr):
            return False  # a join condition between two relations
    return bool(_colrefs(expr, inside_sublinks=True))


# --------------------------------------------------------------------------------------------
# Statement checks
# --------------------------------------------------------------------------------------------


def _target_names(relation):
    names = {relation.relname}
    if relation.alias is not None:
        names.add(relation.alias.aliasname)
    return names


def _check_where(kind, stmt, text, join_list):
    folder = Folder(stmt.relation.relname)
    where = stmt.whereClause
    if where is None:
        return [Finding("sql-%s-without-where" % kind, text)]
    value = _to_bool(folder.fold(where))
    if value is True:
        return [Finding("sql-where-always-true", text)]
    if value in (False, None):
        return []  # matches nothing
    if not _row_specific(where, _target_names(stmt.relation)):
        return [Finding("sql-where-not-row-specific", text)]
    if join_list and not _restricts(where, folder):
        return [Finding("sql-join-without-restriction", text)]
    return []


def _function_findings(stmt, text, depth):
    """CREATE FUNCTION/PROCEDURE: judge the body too, it will run later."""
    language, body = None, None
    for opt in stmt.options or ():
        if opt.defname == "language":
            language = opt.arg.sval.lower()
        elif opt.defname == "as":
            parts = [p.sval for p in opt.arg if isinstance(p, ast.String)]
            body = parts[0] if len(parts) == 1 else None
    if stmt.sql_body is not None:
        return []  # BEGIN ATOMIC bodies are parsed in the tree and walked with it
    if language == "sql" and body is not None:
        return _judge(body, depth + 1, context=text)
    if language == "plpgsql":
        try:
            tree = pglast.parse_plpgsql(text)
        except Exception as exc:  # pglast raises its own ParseError family
            return [Finding("sql-unparseable", text, "the PL/pgSQL body does not parse: %s" % exc)]
        return _plpgsql_findings(tree, text, depth)
    if language in ("internal", "c"):
        return []  # binds compiled code; no SQL text to read
    return [Finding("sql-dynamic", text, "a function body in language %r cannot be verified" % language)]


def _plpgsql_findings(tree, text, depth):
    findings, stack = [], [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, dict):
            for key, value in n.items():
                if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors") or (
                    key == "PLpgSQL_stmt_open" and isinstance(value, dict) and "dynquery" in value
                ):
                    findings.append(Finding("sql-dynamic", text, "the function runs EXECUTE of dynamic SQL"))
                if key == "PLpgSQL_expr" and isinstance(value, dict) and value.get("parseMode", 0) == 0:
                    findings.extend(_judge(value.get("query", ""), depth + 1, context=text))
                stack.append(value)
    return findings


def _statement_findings(node, text, prepared, depth):
    kind = _name(node)
    if kind == "TruncateStmt":
        return [Finding("sql-truncate", text)]
    if kind == "DropStmt":
        obj = _enum_name(node.removeType)
        out = []
        if obj in _DROP_RULES:
            out.append(Finding(_DROP_RULES[obj], text))
        elif _enum_name(node.behavior) == "DROP_CASCADE" and obj not in _CASCADE_OK:
            out.append(Finding("sql-drop-cascade", text))
        return out
    if kind == "DropdbStmt":
        return [Finding("sql-drop-database", text)]
    if kind == "DropOwnedStmt":
        return [Finding("sql-drop-owned", text)]
    if kind == "AlterTableStmt":
        out = []
        for cmd in node.cmds or ():
            subtype = _enum_name(getattr(cmd, "subtype", ""))
            if subtype == "AT_DropColumn":
                out.append(Finding("sql-drop-column", text))
            elif _enum_name(getattr(cmd, "behavior", "")) == "DROP_CASCADE" and subtype.startswith("AT_Drop"):
                out.append(Finding("sql-drop-cascade", text))
        return out
    if kind == "DeleteStmt":
        return _check_where("delete", node, text, node.usingClause)
    if kind == "UpdateStmt":
        return _check_where("update", node, text, node.fromClause)
    if kind == "MergeStmt":
        for when in node.mergeWhenClauses or ():
            if _enum_name(when.commandType) != "CMD_DELETE":
                continue
            match = _enum_name(when.matchKind)
            if match == "MERGE_WHEN_NOT_MATCHED_BY_SOURCE":
                return [Finding("sql-merge-delete", text)]
            cond = _to_bool(fold(node.joinCondition))
            extra = _to_bool(fold(when.condition)) if when.condition is not None else True
            if cond is True and extra is True:
                return [Finding("sql-merge-delete", text)]
        return []
    if kind == "DoStmt":
        return [Finding("sql-dynamic", text, "a DO block runs procedural code the guard cannot verify")]
    if kind == "ExecuteStmt":
        if node.name not in prepared:
            return [Finding("sql-dynamic", text, "EXECUTE of a statement prepared elsewhere cannot be verified")]
        return []
    if kind == "CopyStmt" and node.is_program:
        return [Finding("sql-copy-program", text)]
    if kind == "CreateFunctionStmt":
        return _function_findings(node, text, depth)
    return []


def _judge(sql, depth=0, context=None):
    if depth > 5:
        return [Finding("sql-dynamic", context or sql, "nesting too deep to verify")]
    try:
        tree = pglast.parse_sql(sql)
    except Exception as exc:  # pglast.parser.ParseError; anything else is just as unverifiable
        # psql would run a backslash outside quotes as a meta-command; say so rather than "syntax error"
        if "\\" in _without_literals(sql):
            return [Finding("sql-psql-meta", context or sql)]
        return [Finding("sql-unparseable", context or sql, "the SQL does not parse: %s" % exc)]
    prepared = {s.stmt.name for s in tree if isinstance(s.stmt, ast.PrepareStmt)}
    findings = []
    for raw in tree:
        text = context or _statement_text(sql, raw)
        for node in _walk(raw.stmt):
            findings.extend(_statement_findings(node, text, prepared, depth))
    return dedupe(findings)


def _without_literals(sql):
    """The SQL with quoted strings, dollar-quoted bodies and comments blanked, to spot meta-commands.

    Approximate on purpose: it only chooses between two refusals (meta-command or syntax error)
    for SQL that already failed to parse.
    """
    sql = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$.*?\$\1\$", "''", sql, flags=re.S)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


def _statement_text(sql, raw):
    data = sql.encode("utf-8")  # pglast locations are byte offsets
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(data)
    return data[start:end].decode("utf-8", "replace").strip()


def judge(sql, deny_rules=()):
    """Findings for ``sql`` (a string of one or more statements); empty means allowed.

    ``deny_rules`` are compiled project rules (``guard.compile_deny_rules(..., 'sql')``); their
    regexes are searched in every statement, as written and as PostgreSQL would print it.
    """
    if not HAS_PGLAST:
        raise RuntimeError("pglast is required for the SQL guard: %s" % PGLAST_IMPORT_ERROR)
    if not isinstance(sql, str):
        return [Finding("sql-unparseable", repr(sql), "SQL must be a string")]
    sql = str(sql)  # plain str: the parser (Cython) rejects str subclasses
    findings = _judge(sql)
    if deny_rules and not any(f.rule in ("sql-unparseable", "sql-psql-meta") for f in findings):
        for raw in pglast.parse_sql(sql):
            text = _statement_text(sql, raw)
            printed = _stream(raw.stmt)
            for rule in deny_rules:
                if rule.matches_text(text) or rule.matches_text(printed):
                    findings.append(rule.finding(text))
    return dedupe(findings)


def statement_kinds(sql):
    """Per statement: (text, node type name, can it run inside a transaction, does it only read).

    safe_sql uses this to decide how to wrap the SQL (check mode, single transaction) and
    whether the statements can change anything. Call only after :func:`judge` allowed the SQL.
    """
    out = []
    for raw in pglast.parse_sql(sql):
        node = raw.stmt
        kind = _name(node)
        in_tx = (
            kind not in _NON_TRANSACTIONAL
            and not (kind == "IndexStmt" and node.concurrent)
            and not (kind == "DropStmt" and node.concurrent)
            and not (kind == "ReindexStmt")
            and kind != "TransactionStmt"
        )
        out.append(
            {
                "statement": _statement_text(sql, raw),
                "type": kind,
                "transactional": in_tx,
                "transaction_control": kind == "TransactionStmt",
                "read_only": _read_only(node),
            }
        )
    return out


def _read_only(node):
    kind = _name(node)
    if kind == "SelectStmt":
        return (
            node.intoClause is None
            and node.lockingClause is None
            and not any(
                isinstance(n, (ast.DeleteStmt, ast.UpdateStmt, ast.InsertStmt, ast.MergeStmt)) for n in _walk(node)
            )
        )
    if kind == "ExplainStmt":
        analyze = any(o.defname == "analyze" for o in node.options or ())
        return not analyze or _read_only(node.query)
    if kind in ("VariableShowStmt",):
        return True
    if kind == "CopyStmt":
        return not node.is_from
    return False
