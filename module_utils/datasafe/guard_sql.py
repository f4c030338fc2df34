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
# Why DROP ... CASCADE of these takes data with it (the generic reason covers the rest).
_FUNCTION_CASCADE = (
    "DROP FUNCTION ... CASCADE also drops everything that uses the function: a generated column "
    "computed by it goes with all its values, and so do column defaults, check constraints, "
    "expression indexes and triggers that call it"
)
_CASCADE_REASONS = {
    "OBJECT_FUNCTION": _FUNCTION_CASCADE,
    "OBJECT_PROCEDURE": _FUNCTION_CASCADE,
    "OBJECT_ROUTINE": _FUNCTION_CASCADE,
    "OBJECT_AGGREGATE": _FUNCTION_CASCADE,
    "OBJECT_TYPE": "DROP TYPE ... CASCADE drops every column of that type, with all its values",
    "OBJECT_DOMAIN": "DROP DOMAIN ... CASCADE drops every column of that domain, with all its values",
    "OBJECT_EXTENSION": "DROP EXTENSION ... CASCADE drops every column whose type or default the extension provides",
}
# Functions that execute SQL text they are given, elsewhere or later (dblink: on another
# connection, possibly another server; query_to_xml and friends: the query in the string).
_SQL_TEXT_FUNCTIONS = {
    "dblink",
    "dblink_exec",
    "dblink_send_query",
    "dblink_open",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "pg_background_launch",
}
_AGGREGATES = {"count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "every"}

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


def _walk(node, prune=None):
    """Every AST node under ``node`` (itself included), depth first; not below nodes ``prune`` accepts."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(reversed(n))
        elif isinstance(n, ast.Node):
            yield n
            if prune is not None and prune(n):
                continue
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

    def __init__(self, target=None, names=()):
        self.target = target
        # qualifiers that name the target: its name, alias and schema-qualified name
        self._qualifier = None
        quals = sorted({re.escape(n) for n in names if n}, key=len, reverse=True)
        if quals:
            self._qualifier = re.compile(r"(?<![\w.'\"$])(?:\w+\.)?(?:%s)\.(?=[\w\"])" % "|".join(quals))

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
        """The same expression, however the target's columns are written (``id``, ``p.id``,
        ``patients.id``, ``public.patients."id"``): comparing a column with itself."""
        return a is not None and b is not None and self._canon(a) == self._canon(b)

    def _canon(self, node):
        text = _stream(node)
        return self._qualifier.sub("", text) if self._qualifier is not None else text

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


def fold(expr, target=None, names=()):
    """Constant value of an expression: True, False, None (NULL) or UNKNOWN."""
    return Folder(target, names).fold(expr)


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


def _ctes(stmt):
    with_clause = getattr(stmt, "withClause", None)
    return {c.ctename: c.ctequery for c in (with_clause.ctes if with_clause is not None else ()) or ()}


def _select_restricted(sel, ctes, depth=0):
    """Is a joined subquery (or CTE) itself a restricted set of rows: filtered, aggregated,
    limited or a constant list? A whole table, or a join of whole tables, is not."""
    if depth > 8 or not isinstance(sel, ast.SelectStmt):
        return False
    if _enum_name(sel.op) != "SETOP_NONE":
        return _select_restricted(sel.larg, ctes, depth + 1) and _select_restricted(sel.rarg, ctes, depth + 1)
    if sel.valuesLists:
        return True
    if sel.whereClause is not None and _restricts(sel.whereClause, Folder()):
        return True
    if sel.groupClause or sel.havingClause is not None or sel.limitCount is not None:
        return True
    for target in sel.targetList or ():
        if any(isinstance(n, ast.FuncCall) and n.funcname[-1].sval.lower() in _AGGREGATES for n in _walk(target.val)):
            return True
    if not sel.fromClause:
        return True  # SELECT 1 AS id: constants
    return any(_item_restricted(item, ctes, depth + 1) for item in sel.fromClause)


def _item_restricted(item, ctes, depth=0):
    if isinstance(item, ast.RangeSubselect):
        return _select_restricted(item.subquery, ctes, depth)
    if isinstance(item, ast.RangeVar):
        return item.schemaname is None and item.relname in ctes and _select_restricted(ctes[item.relname], ctes, depth)
    if isinstance(item, ast.JoinExpr):
        if item.quals is not None and _restricts(item.quals, Folder()):
            return True
        return _item_restricted(item.larg, ctes, depth) or _item_restricted(item.rarg, ctes, depth)
    if isinstance(item, ast.RangeFunction):  # unnest(ARRAY[1, 2, 3]): a constant list
        return not any(isinstance(n, (ast.ColumnRef, ast.SubLink, ast.ParamRef)) for n in _walk(item.functions))
    return False


def _item_names(item):
    names = set()
    if getattr(item, "alias", None) is not None:
        names.add(item.alias.aliasname)
    if isinstance(item, ast.RangeVar):
        names.add(item.relname)
    if isinstance(item, ast.JoinExpr):
        names |= _item_names(item.larg) | _item_names(item.rarg)
    return names


def _join_restricted(join_list, where, ctes):
    """DELETE ... USING / UPDATE ... FROM joined with a restricted relation that the WHERE
    actually uses: the join itself restricts the rows (a cross join with it would not)."""
    used = {
        [f.sval for f in ref.fields[:-1] if isinstance(f, ast.String)][-1]
        for ref in _colrefs(where, inside_sublinks=True)
        if len(ref.fields) > 1
    }
    return any(_item_restricted(item, ctes) and (_item_names(item) & used) for item in join_list)


def _check_where(kind, stmt, text, join_list):
    folder = Folder(
        stmt.relation.relname,
        _target_names(stmt.relation)
        | {"%s.%s" % (stmt.relation.schemaname, stmt.relation.relname) if stmt.relation.schemaname else None},
    )
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
    if join_list and not _restricts(where, folder) and not _join_restricted(join_list, where, _ctes(stmt)):
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


_ASSIGN = re.compile(r"^[^:=]*?:?=(.*)$", re.S)


def _plpgsql_findings(tree, text, depth):
    """Judge every statement and expression of a parsed PL/pgSQL body (pglast.parse_plpgsql).

    Statements are judged as SQL; expressions (conditions, assignments) as ``SELECT <expr>``,
    so a dblink_exec() in an assignment is seen too. ``EXECUTE`` of a constant string is judged
    as the SQL in the string; of a string built at run time it cannot be read and is refused.
    """
    findings, stack = [], [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, dict):
            for key, value in n.items():
                if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors") and isinstance(value, dict):
                    findings.extend(_dynamic_query(value.get("query"), text, depth))
                elif key == "dynquery":
                    findings.extend(_dynamic_query(value, text, depth))
                if key == "PLpgSQL_expr" and isinstance(value, dict):
                    findings.extend(_plpgsql_expr(value, text, depth))
                stack.append(value)
    return findings


def _plpgsql_expr(expr, text, depth):
    query, mode = expr.get("query", ""), expr.get("parseMode", 0)
    if mode == 0:  # a whole SQL statement
        return _judge(query, depth + 1, context=text)
    if mode in (3, 4, 5):  # target := expression
        match = _ASSIGN.match(query)
        if match is None:
            return [Finding("sql-unparseable", text, "cannot read the PL/pgSQL assignment %r" % query)]
        query = match.group(1)
    return _judge("SELECT " + query, depth + 1, context=text)


def _dynamic_query(wrapper, text, depth):
    """``EXECUTE <expr>``: a constant string is SQL the guard can read; anything else is built at run time."""
    expr = wrapper.get("PLpgSQL_expr") if isinstance(wrapper, dict) else None
    sql = None
    if isinstance(expr, dict):
        try:
            targets = pglast.parse_sql("SELECT " + expr.get("query", ""))[0].stmt.targetList
        except Exception:  # pglast's ParseError family: unreadable, so refused below
            targets = None
        if targets and len(targets) == 1:
            value = fold(targets[0].val)  # a literal, or literals joined with ||
            sql = value if isinstance(value, str) else None
    if sql is None:
        return [Finding("sql-dynamic", text, "EXECUTE of SQL built at run time cannot be verified")]
    return _judge(sql, depth + 1, context=text)


def _do_findings(node, text, depth):
    """A DO block: its PL/pgSQL body parsed and judged like a function's."""
    language, body = "plpgsql", None
    for opt in node.args or ():
        if opt.defname == "language":
            language = opt.arg.sval.lower()
        elif opt.defname == "as":
            body = opt.arg.sval
    if language != "plpgsql" or body is None:
        return [Finding("sql-dynamic", text, "a DO block in language %r cannot be verified" % language)]
    tag = "datasafe_do"
    while "$%s$" % tag in body:
        tag += "_"
    wrapped = "CREATE FUNCTION datasafe_do() RETURNS void LANGUAGE plpgsql AS $%s$%s$%s$" % (tag, body, tag)
    try:
        tree = pglast.parse_plpgsql(wrapped)
    except Exception as exc:  # pglast raises its own ParseError family
        return [Finding("sql-unparseable", text, "the DO block's PL/pgSQL does not parse: %s" % exc)]
    return _plpgsql_findings(tree, text, depth)


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
            out.append(Finding("sql-drop-cascade", text, _CASCADE_REASONS.get(obj)))
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
        return _do_findings(node, text, depth)
    if kind == "FuncCall" and node.funcname[-1].sval.lower() in _SQL_TEXT_FUNCTIONS:
        name = node.funcname[-1].sval.lower()
        return [
            Finding(
                "sql-dynamic",
                text,
                "%s() executes SQL text on a connection the guard cannot see, so that SQL cannot be verified" % name,
            )
        ]
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
        for node in _walk(raw.stmt, prune=_explain_only):
            findings.extend(_statement_findings(node, text, prepared, depth))
    return dedupe(findings)


def _explain_analyzes(node):
    """EXPLAIN ANALYZE runs the statement; EXPLAIN alone (or ANALYZE false/off/0) only plans it."""
    for opt in node.options or ():
        if opt.defname == "analyze":
            arg = opt.arg
            if arg is None:
                return True
            value = arg.sval if isinstance(arg, ast.String) else getattr(arg, "ival", getattr(arg, "boolval", True))
            return _to_bool(value) is not False
    return False


def _explain_only(node):
    """Prune EXPLAIN without ANALYZE: it executes nothing, so the statement in it is not judged."""
    return isinstance(node, ast.ExplainStmt) and not _explain_analyzes(node)


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
        return not _explain_analyzes(node) or _read_only(node.query)
    if kind in ("VariableShowStmt",):
        return True
    if kind == "CopyStmt":
        return not node.is_from
    return False
