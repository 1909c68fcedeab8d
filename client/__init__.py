"""Client for the its-convert-xml HTTP API (see docs/client.md)."""
