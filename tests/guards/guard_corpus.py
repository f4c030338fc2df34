"""Load the guard corpora (shared by the engine, CLI, module and lint tests)."""

import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


SQL = load("corpus_sql.yml")
CMD = load("corpus_cmd.yml")
SQL_DESTRUCTIVE = [(e["sql"], e["rule"]) for e in SQL["destructive"]]
SQL_BENIGN = list(SQL["benign"])
CMD_DESTRUCTIVE = [(e["cmd"], e["rule"]) for e in CMD["destructive"]]
CMD_BENIGN = list(CMD["benign"])
