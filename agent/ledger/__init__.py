"""The SQLite ledger: the only package that contains SQL.

``schema`` holds the versioned migrations, ``store`` the connections and the
single-writer thread, ``engine`` the write path (emit and apply events, the
merge rules), ``queries`` the read side.
"""
