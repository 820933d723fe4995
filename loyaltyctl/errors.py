"""The error tree. Errors are values that name what they are about: `field` is the
canonical field name (the CSV column: amount, points, occurred_at, member_id, ...),
which the CLI turns into its option name (--amount, --at, MEMBER_ID) and imports keep
as the column. The CLI turns any LoyaltyError into `Error: <message>` on stderr and
its exit code; everything else is a bug and may show a traceback."""

from __future__ import annotations


class LoyaltyError(Exception):
    """A user or business error: one line, non-zero exit, nothing written."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.detail = message
        self.field = field

    @property
    def message(self) -> str:
        return self.named()

    def named(self, rename=None) -> str:
        """The message, prefixed by its field under the caller's name for it (`rename(field)`:
        the CLI's option name; by default the field itself, which is the CSV column)."""
        if not self.field:
            return self.detail
        return f"{rename(self.field) if rename else self.field}: {self.detail}"

    def __str__(self) -> str:
        return self.message


class InputError(LoyaltyError):
    """Malformed input: a bad value, timestamp, amount, file or column."""


class NotFound(LoyaltyError):
    """An unknown member, program, reward, transaction or file."""


class Conflict(LoyaltyError):
    """The request contradicts the ledger: duplicate enrollment, reused --txn, overdraw."""


class ProgramError(InputError):
    """An invalid program definition; carries file, line and field (a path in the program)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None):
        super().__init__(message, field=field)
        self.path, self.line = path, line

    def named(self, rename=None) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.field + ': ' if self.field else ''}{self.detail}"


class Retry(Exception):
    """A concurrent transaction got there first (PostgreSQL: a serialization failure, a
    deadlock, a key another writer just inserted): run the whole transaction again. Never
    reaches a user: store.connection.transaction retries, then raises DatabaseError."""


class DatabaseError(LoyaltyError):
    """A missing, unreadable, or newer-than-supported database."""
