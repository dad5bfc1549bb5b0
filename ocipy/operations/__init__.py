"""One module per lifecycle operation, each with `main(args) -> int`; the CLI imports only the one it runs."""
