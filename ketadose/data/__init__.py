"""Shipped data: the protocol library and the curated unit registry."""
