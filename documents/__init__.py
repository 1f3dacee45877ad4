"""Rendering the official documents (DOCX, XLSX, PDF, PNG) from `conversations.documents` data.

No database and no chat here: callers hand in `Header` and `Entry` values (and, for the
material book, a way to read a stored file's bytes) and get bytes back or a file written.
"""
