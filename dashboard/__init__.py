"""Dash dashboard over the lakehouse's gold tables (reads Delta with deltalake; never starts a JVM)."""
