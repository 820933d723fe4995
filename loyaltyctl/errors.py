"""The error tree. The CLI turns any LoyaltyError into `Error: <message>` on stderr
and its exit code; everything else is a bug and may show a traceback."""


class LoyaltyError(Exception):
    """A user or business error: one line, non-zero exit, nothing written."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(LoyaltyError):
    """Malformed input: a bad value, timestamp, amount, file or column."""


class NotFound(LoyaltyError):
    """An unknown member, program, reward, transaction or file."""


class Conflict(LoyaltyError):
    """The request contradicts the ledger: duplicate enrollment, reused --txn, overdraw."""


class ProgramError(InputError):
    """An invalid program definition; carries file, line and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.detail = path, line, field, message
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{field + ': ' if field else ''}{message}")


class DatabaseError(LoyaltyError):
    """A missing, unreadable, or newer-than-supported database."""
