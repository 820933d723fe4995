"""Every report as data (reports.shape.Report): figures from the store's SQL, shaped for
the renderers, which show the same rows and keys as a table, JSON or CSV."""
