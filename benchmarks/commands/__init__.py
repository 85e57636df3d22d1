"""``python -m benchmarks``'s subcommands, one module per concern; each adds its parsers and holds their handlers."""
