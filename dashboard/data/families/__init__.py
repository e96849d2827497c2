"""One module per metric family (named as the pipeline's families); each reads the lake only through
`dashboard.data.lake` and counts distinct users with `dashboard.data.activity`."""
