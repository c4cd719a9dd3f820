"""Readers for the real data sources in DESIGN.md and for users' own folders."""
