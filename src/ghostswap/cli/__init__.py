"""The ``ghostswap`` command line: one module per subcommand."""
