"""The two kinds of failure, kept apart: bad user input, and a candidate model that fails a check."""


class AstevoError(Exception):
    """Bad input from the user: the CLI prints it as one line and exits with code 2."""


class CandidateRejected(Exception):
    """A candidate failed a check: recorded with its reason as the candidate's verdict, never shown as an error."""
