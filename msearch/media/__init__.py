"""Media: bytes in, decoded pixels and metadata out. No persistence, no inference."""
