"""Tableau data source files (`.tds`) that connect live to the Postgres warehouse, and reading a
Postgres table the way an extract refresh does.

A `.tds` is Tableau's XML description of a data source.  Ours holds one `postgres` connection
(server, port, dbname, schema `marts`, username, sslmode — never the password: that travels only in
the publish request's `connectionCredentials` and Tableau keeps it server-side) and one relation,
the mart's table.  Tableau Desktop writes the connection inside a `federated` wrapper with named
connections; we write the same shape so the file opens in Desktop as it is.
"""
from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.etree import ElementTree as ET

from finance_pipeline.publish.bi import Column, MartTable, column_kind, pg_sql_type, sized_numerics

TDS_VERSION = "18.1"


def build_tds(name: str, *, server: str, port: int, dbname: str, schema: str, table: str, username: str,
              sslmode: str = "prefer") -> bytes:
    root = ET.Element("datasource", {"formatted-name": name, "inline": "true", "version": TDS_VERSION})
    federated = ET.SubElement(root, "connection", {"class": "federated"})
    named = ET.SubElement(ET.SubElement(federated, "named-connections"), "named-connection",
                          {"caption": server, "name": "postgres.warehouse"})
    ET.SubElement(named, "connection", {
        "authentication": "username-password", "class": "postgres", "dbname": dbname, "odbc-native-protocol": "",
        "one-time-sql": "", "port": str(port), "schema": schema, "server": server, "sslmode": sslmode,
        "username": username})
    ET.SubElement(federated, "relation", {"connection": "postgres.warehouse", "name": table,
                                          "table": f"[{schema}].[{table}]", "type": "table"})
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def read_tds(data: bytes) -> bytes:
    """The `.tds` XML of a `.tds` or of a `.tdsx` (a zip holding one)."""
    if data[:2] != b"PK":
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".tds")]
        if len(names) != 1:
            raise ValueError(f"a .tdsx must hold one .tds, this one holds {len(names)}")
        return z.read(names[0])


def parse_tds(data: bytes) -> dict[str, Any]:
    """The postgres connection and the table of a `.tds`: {server, port, dbname, schema, table, username,
    sslmode}; ValueError when it has none (a file Tableau could not connect from)."""
    root = ET.fromstring(read_tds(data))
    if root.tag != "datasource":
        raise ValueError(f"the root element is <{root.tag}>, not <datasource>")
    conn = next((c for c in root.iter("connection") if c.get("class") == "postgres"), None)
    if conn is None:
        classes = sorted({c.get("class", "?") for c in root.iter("connection")})
        raise ValueError(f"no postgres connection in the data source (connection classes: {classes})")
    missing = [a for a in ("server", "dbname", "username") if not conn.get(a)]
    if missing:
        raise ValueError(f"the postgres connection lacks {', '.join(missing)}")
    relation = next((r for r in root.iter("relation") if r.get("type") == "table"), None)
    if relation is None or not relation.get("table"):
        raise ValueError("no table relation in the data source")
    parts = [p.strip("[]") for p in relation.get("table", "").split("].[")]
    schema, table = (parts[0], parts[1]) if len(parts) == 2 else (conn.get("schema") or "public", parts[0])
    return {"server": conn.get("server"), "port": int(conn.get("port") or 5432), "dbname": conn.get("dbname"),
            "schema": schema, "table": table, "username": conn.get("username"),
            "sslmode": conn.get("sslmode") or "prefer"}


def pg_columns(con: Any, schema: str, table: str) -> list[Column]:
    """A Postgres table's columns in the kinds the BI publishers use (`numeric(p, s)` → decimal)."""
    with con.cursor() as cur:
        cur.execute("select column_name, data_type, numeric_precision, numeric_scale from information_schema.columns "
                    "where table_schema = %s and table_name = %s order by ordinal_position", (schema, table))
        found = cur.fetchall()
    if not found:
        raise LookupError(f'relation "{schema}.{table}" does not exist')

    def fetchone(sql: str) -> tuple:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()

    found = sized_numerics(fetchone, schema, table, found)
    out = []
    for name, data_type, precision, scale in found:
        sql_type = pg_sql_type(data_type, precision, scale)
        kind, p, s = column_kind(sql_type)
        out.append(Column(name, sql_type, kind, p, s))
    return out


def pg_table(con: Any, schema: str, table: str) -> MartTable:
    """Every row of a Postgres table (what an extract refresh pulls)."""
    columns = pg_columns(con, schema, table)
    select = ", ".join('"' + c.name.replace('"', '""') + '"' for c in columns)
    with con.cursor() as cur:
        cur.execute(f'select {select} from "{schema}"."{table}"')
        rows = [tuple(None if v is None else (str(v) if c.kind == "text" and not isinstance(v, str) else v)
                      for v, c in zip(r, columns)) for r in cur.fetchall()]
    return MartTable(table, columns, rows)
