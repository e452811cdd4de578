"""Data: reading rows (rows.py), prompt/completion text (text.py), preference examples
(preference.py), token ids (encode.py), streaming (stream.py), generated demo data (demo.py)."""

from ..errors import DataError
from .preference import Example, check_example, check_pair, load_examples
from .rows import iter_rows, read_rows
from .text import Text, split_shared_prefix, to_text

__all__ = ["DataError", "Example", "Text", "check_example", "check_pair", "iter_rows", "load_examples", "read_rows",
           "split_shared_prefix", "to_text"]
