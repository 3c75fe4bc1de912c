"""Message model: header decoding (headers), BODYSTRUCTURE and raw MIME -> parts (mime), text
rendering (render), JWZ threading (thread), and the one sanitiser (sanitize).

Layer rule (DESIGN.md §1): standard library and html2text only; nothing here imports textual or
the store/protocol/backends/ui packages.  Import the submodules directly.
"""
