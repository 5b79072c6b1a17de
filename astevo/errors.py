"""User-facing errors: each carries a one-line message that says what is wrong and what to do."""


class AstevoError(Exception):
    """An error the CLI prints as one line and turns into exit code 2."""
