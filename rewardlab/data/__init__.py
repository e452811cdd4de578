"""Data: reading rows (rows.py), one row loader for every kind (loader.py: parse, check,
--skip-bad-rows counting), prompt/completion text (text.py), preference examples
(preference.py), token ids (encode.py), streaming (stream.py), generated demo data (demo.py)."""

from ..errors import DataError
from .loader import load_examples
from .preference import Example, check_example, check_pair
from .rows import iter_rows, read_rows
from .text import Text, split_shared_prefix, to_text

__all__ = ["DataError", "Example", "Text", "check_example", "check_pair", "iter_rows", "load_examples", "read_rows",
           "split_shared_prefix", "to_text"]
