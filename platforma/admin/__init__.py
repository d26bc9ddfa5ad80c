"""Instance administration: audit log, staff accounts, legal pages, plugins."""
