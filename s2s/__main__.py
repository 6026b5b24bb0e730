"""`python -m s2s`: the `s2s` command line, for hosts where the console script is not on PATH."""

from s2s.app.cli import run

if __name__ == "__main__":
    run()
