"""`python -m astevo.cli`: the command line without the installed script."""

from astevo.cli.app import app

if __name__ == "__main__":  # a spawned helper process (image decoding) imports this module too
    app()
