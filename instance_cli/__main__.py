"""Allow `python -m instance_cli`."""

from instance_cli.cli import main

if __name__ == "__main__":
    main()
