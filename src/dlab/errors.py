"""The one exception type that reaches the user as a one-line message.

Library code raises `DlabError` for bad input (unknown names, bad values, missing or corrupt
files); the CLI prints `dlab: error: <message>` and exits with status 2. Must not import torch.
"""


class DlabError(Exception):
    """A user-facing error: the message names the bad value and what was expected."""
