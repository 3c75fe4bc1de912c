"""Error types shared by every layer; the CLI maps them to exit codes and one-line messages."""


class TuimailError(Exception):
    """Base class. str(error) is a single line meant for the user."""

    exit_code = 1


class ConfigError(TuimailError):
    """Bad or missing configuration: the message names the file and the key to fix."""

    exit_code = 2


class MissingSecret(ConfigError):
    """No password, password_command or oauth2_token_command: the app asks for the password."""


class UsageError(TuimailError):
    exit_code = 2


class Unsupported(UsageError):
    """This kind of account cannot do that (see AccountService.capabilities): e.g. search on the
    server, or send, with a backend that has neither. The message names what and the account kind."""


class NetworkError(TuimailError):
    """The server could not be reached, the connection dropped, or it sent something we refuse."""

    exit_code = 3


class TLSError(NetworkError):
    pass


class AuthError(NetworkError):
    pass


class ProtocolError(NetworkError):
    """The server answered with something malformed or out of bounds (e.g. a huge literal)."""


class CommandFailed(TuimailError):
    """The server answered NO/BAD to a command; carries the (sanitised) server text."""

    exit_code = 3

    def __init__(self, command: str, status: str, text: str):
        self.command, self.status, self.text = command, status, text
        super().__init__(f"server refused {command}: {status} {text}")


class StoreError(TuimailError):
    """The local store (or the body cache) cannot be read or written: a damaged file, a full
    disk, a permission problem or a lock held too long. `kind` names the cause:
    "corrupt", "full", "permission", "locked", "io" or "other"."""

    exit_code = 4

    def __init__(self, message: str, kind: str = "other", path=None):
        super().__init__(message)
        self.kind = kind
        self.path = path


class NotCached(TuimailError):
    """Offline and the requested data is not in the local store."""

    exit_code = 3
