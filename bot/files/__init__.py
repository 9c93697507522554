"""Files in chat: bounded downloads from platform file hosts, typing by content, PDF checks and
text extraction, the parts each wire format carries, and thread memory for files.

Adapters build :class:`~bot.types.Attachment` fetchers with :func:`url_fetcher` (or
:func:`fetch_url`) and an :class:`AllowedHosts`; the conversation service hands the attachments
to :class:`FileService`.
"""

from bot.files.errors import (
    CorruptPdf,
    DownloadFailed,
    DownloadRefused,
    EncryptedPdf,
    FileError,
    FileTooLarge,
)
from bot.files.fetch import (
    DISCORD_FILE_HOSTS,
    SLACK_FILE_HOSTS,
    AllowedHosts,
    DownloadBudget,
    check_url,
    fetch_url,
    read_capped,
    url_fetcher,
)
from bot.files.service import FileService, PreparedFiles

__all__ = [
    "DISCORD_FILE_HOSTS",
    "SLACK_FILE_HOSTS",
    "AllowedHosts",
    "CorruptPdf",
    "DownloadBudget",
    "DownloadFailed",
    "DownloadRefused",
    "EncryptedPdf",
    "FileError",
    "FileService",
    "FileTooLarge",
    "PreparedFiles",
    "check_url",
    "fetch_url",
    "read_capped",
    "url_fetcher",
]
