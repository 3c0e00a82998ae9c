"""Git-tag model registry (gto-compatible): versions, stages, lineage and artifact integrity."""
