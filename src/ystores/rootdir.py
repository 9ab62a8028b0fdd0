"""What a file store's root holds: documents, the store's side files, and stray files.

Every command that walks a root (`ls`, `inspect`, `verify`, `copy`, `squash`,
`migrate`) asks `walk_root`, so they agree on what a document is (the rule is in
`ystores.names`):

- a side file of the store (`NAME.torn-N`, `NAME.bak-TIME`, `.NAME.XXXXXXXX.tmp`)
  is never a document; tools list it, marked, so an operator sees it;
- a hidden file or directory (a part starting with a dot) and a symbolic link are
  strays: no document can have such a name;
- any other regular file is a document when it is in a store format (or empty),
  and a stray otherwise (a `README.txt`, a SQLite database).

Strays are skipped; commands name them in one warning line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreFormatError, UnknownFormatError
from .names import SideFileKind, side_file_kind

__all__ = ["RootListing", "SideFile", "walk_root"]


@dataclass(frozen=True)
class SideFile:
    """A file the store made beside a document.

    Attributes:
        name: Its path relative to the root (`/`-separated).
        kind: `temporary`, `torn` or `backup`.
        size: Its size in bytes.
    """

    name: str
    kind: SideFileKind
    size: int


@dataclass
class RootListing:
    """What `walk_root` found.

    Attributes:
        root: The directory.
        documents: Document names (paths relative to the root), sorted.
        side_files: The store's side files, sorted by name.
        strays: Files (or hidden directories, ending in `/`) that are not documents.
    """

    root: Path
    documents: list[str] = field(default_factory=list)
    side_files: list[SideFile] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)

    def strays_warning(self, limit: int = 5) -> str | None:
        """One line naming the stray files skipped, or None when there is none."""
        if not self.strays:
            return None
        shown = ", ".join(self.strays[:limit])
        more = len(self.strays) - limit
        if more > 0:
            shown += f" and {more} more"
        count = len(self.strays)
        noun = "file that is" if count == 1 else "files that are"
        return f"Skipped {count} {noun} not store documents in {self.root}: {shown}."


def _is_store_file(path: Path) -> bool:
    from .filestore.formats import detect_format  # the store's own reader decides

    try:
        with open(path, "rb") as file:
            detect_format(file, os.fstat(file.fileno()).st_size, str(path))
    except UnknownFormatError:
        return False
    except StoreFormatError:
        return True  # a damaged store file is still a document: verify reports it
    except OSError:
        return False
    return True


def _is_document(path: Path, check_format: bool) -> bool:
    if path.name.startswith(".") or path.is_symlink() or not path.is_file():
        return False
    return not check_format or _is_store_file(path)


def walk_root(root: str | os.PathLike[str], *, check_format: bool = True) -> RootListing:
    """Sort the files under `root` into documents, side files and strays.

    Symbolic links are never followed. Hidden directories are not entered; each is
    one stray.

    Args:
        root: A file store's directory.
        check_format: Read each candidate's header and count a file in no store
            format as a stray (False: every other regular file is a document).
    """
    base = Path(root)
    listing = RootListing(base)
    for directory, subdirs, files in os.walk(base):
        here = Path(directory)
        for sub in sorted(subdirs):
            path = here / sub
            if sub.startswith(".") or path.is_symlink():
                listing.strays.append(path.relative_to(base).as_posix() + "/")
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".") and not (here / d).is_symlink()
        )
        for filename in files:
            path = here / filename
            relative = path.relative_to(base).as_posix()
            kind = side_file_kind(filename)
            if kind is not None and not path.is_symlink():
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                listing.side_files.append(SideFile(relative, kind, size))
            elif _is_document(path, check_format):
                listing.documents.append(relative)
            else:
                listing.strays.append(relative)
    listing.documents.sort()
    listing.side_files.sort(key=lambda side: side.name)
    listing.strays.sort()
    return listing
