"""HTTP entrypoint: the Litestar app and its routes per audience."""
