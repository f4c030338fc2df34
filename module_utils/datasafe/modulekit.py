# -*- coding: utf-8 -*-
"""The one way a thin module calls its engine and ends: typed errors become ``fail_json``.

Engines (everything else in module_utils/datasafe) never talk to Ansible: they return a result or
raise a typed error. A module's ``main`` is its argument spec and one :func:`finish` (or
:func:`call`, when it shapes the result itself)::

    modulekit.finish(module, lambda: engine.work(...), "restore point", (engine.EngineError,), name=None)

The failure's ``msg`` is ``"<label>: <error>"`` (just the error when ``label`` is None, for
errors that already say everything); an error that carries a ``result`` dict (the engines'
``...Failed`` errors: the partial result, its stage and problems) hands those fields to
``fail_json`` too, after the module's own ``fields``.
"""


def call(module, engine_call, label, errors, **fields):
    """``engine_call()``'s value; one of ``errors`` ends the module with ``fail_json`` instead."""
    try:
        return engine_call()
    except errors as exc:
        fail(module, exc, label, **fields)


def fail(module, exc, label=None, **fields):
    """End the module for the typed error ``exc`` (its ``result`` fields, if any, included)."""
    details = dict(fields)
    details.update(getattr(exc, "result", None) or {})
    details.pop("msg", None)
    module.fail_json(msg=str(exc) if label is None else "%s: %s" % (label, exc), **details)


def finish(module, engine_call, label, errors, **fields):
    """Call the engine and exit with its result (a dict holding ``changed``), or fail as :func:`call` does."""
    module.exit_json(**call(module, engine_call, label, errors, **fields))
