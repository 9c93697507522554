"""The console: the same core, from a terminal.

On a TTY each answer is drawn in place as it grows (Markdown laid out for the terminal where it
can be) and printed once when it is final; Ctrl-C stops an answer, a second Ctrl-C quits.
Otherwise each input line is one turn and each reply is printed whole, followed by a blank line;
stdout holds nothing else.

``app`` is the loop, ``surface`` the two reply surfaces, ``view`` how a terminal shows an
answer, ``keys`` the lines and Ctrl-C the loop waits for.
"""

from adapters.console.app import main

__all__ = ["main"]
