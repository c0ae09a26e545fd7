"""The book: the main job (reproduce), figures and their style, tables, interactive maps,
notebook helpers.

See ARCHITECTURE.md for the layers and what each may import."""
