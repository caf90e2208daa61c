"""instance-cli: questionnaire -> per-institution Ansible inventory for Mastodon servers."""

from importlib import metadata

try:
    __version__ = metadata.version("instance-cli")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
