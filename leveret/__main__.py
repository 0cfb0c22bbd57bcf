"""`python -m leveret` runs the command line."""

from leveret.cli import main

if __name__ == "__main__":
    main()
