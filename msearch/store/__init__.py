"""Persistence. Nothing outside this package touches SQLite or Qdrant."""
