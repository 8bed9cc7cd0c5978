"""Renderers: terminal tables (rich) and JSON; the core never prints."""
