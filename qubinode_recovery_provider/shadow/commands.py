"""Shell command lines, read as text: split into simple commands, never run.

A rendered ``bash_command`` (or an SSH ``command``, or the ``sourceCode`` facet OpenLineage reports
for a Bash task) is split with :mod:`shlex` into simple commands at ``;``, ``&&``, ``||``, ``|``,
``&`` and new lines; redirections are dropped; wrappers (``sudo``, ``env``, ``timeout``, ``nohup``,
``exec``, variable assignments) are peeled off; ``bash -c '...'`` and ``ssh HOST '...'`` are read
inside (a few levels deep). Every step is one left-to-right pass over bounded text: no regular
expression, no backtracking, nothing executed.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass

#: The most characters of one text read as commands (a rendered field larger than this is cut).
MAX_TEXT_CHARS = 64 * 1024
#: The most simple commands taken from one text.
MAX_COMMANDS = 500
#: How deep ``bash -c`` and ``ssh HOST CMD`` are followed.
MAX_DEPTH = 3
#: Lines joined while a quote is open before the text is given up as unbalanced.
MAX_JOINED_LINES = 50

_SHLEX_NEEDED = frozenset("'\"\\$`#")
_OPERATOR_CHARS = frozenset(";&|()<>")
_NO_OPERATOR_CHARS = str.maketrans("", "", ";&|()<>")
_OPERATORS = frozenset({";", "&&", "||", "|", "&", ";;", "|&", "(", ")", "{", "}"})
_WRAPPERS = frozenset({"sudo", "env", "nohup", "exec", "time", "command", "nice", "stdbuf", "doas"})
_WRAPPER_ARGS = {"sudo": {"-u", "-g", "-h", "-p", "-C", "-D"}, "nice": {"-n"}, "env": {"-u", "-C"}}
_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
_SSH_ARG_OPTIONS = frozenset(
    {
        "-p",
        "-i",
        "-l",
        "-o",
        "-F",
        "-J",
        "-E",
        "-L",
        "-R",
        "-D",
        "-b",
        "-c",
        "-m",
        "-O",
        "-Q",
        "-S",
        "-W",
        "-w",
        "-e",
    }
)


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: its words (the program's base name first), where it runs and from where.

    :param words: the program (base name, ``/usr/bin/kcli`` is ``kcli``) and its arguments
    :param remote_host: the host of an enclosing ``ssh HOST ...`` (None: where the task ran)
    :param cwd: the directory of the last ``cd DIR`` before it in the same text (None: unknown)
    :param text: the command's words (for evidence: redact it whole before cutting it short)
    """

    words: tuple[str, ...]
    remote_host: str | None = None
    cwd: str | None = None
    text: str = ""

    @property
    def program(self) -> str:
        return self.words[0] if self.words else ""


def split_commands(text: str, remote_host: str | None = None, depth: int = 0) -> Iterator[Command]:
    """The simple commands of a shell text, in order (at most :data:`MAX_COMMANDS`).

    :param text: the shell text (cut to :data:`MAX_TEXT_CHARS`)
    :param remote_host: the ssh host the text runs on, when it runs through ``ssh``
    :param depth: nesting level of ``bash -c`` / ``ssh`` (internal)
    """
    cwd: str | None = None
    count = 0
    for line in _logical_lines(text[:MAX_TEXT_CHARS]):
        for simple in _simple_commands(line):
            peeled = _peel(simple)
            if not peeled:
                continue
            program = peeled[0].rpartition("/")[2]
            words = (program, *peeled[1:])
            if program == "cd" and len(words) > 1:
                cwd = words[1] if words[1].startswith("/") or cwd is None else f"{cwd}/{words[1]}"
                continue
            inner = _inner(words, remote_host)
            if inner is not None and depth < MAX_DEPTH:
                yield from split_commands(inner[0], inner[1], depth + 1)
                continue
            count += 1
            if count > MAX_COMMANDS:
                return
            yield Command(words, remote_host, cwd, " ".join(words))


def _logical_lines(text: str) -> Iterator[str]:
    """Lines, with backslash continuations joined and a line with an open quote joined to the next."""
    pending = ""
    joined = 0
    for raw in text.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if _balanced(line) or joined >= MAX_JOINED_LINES:
            pending, joined = "", 0
            yield line
        else:
            pending, joined = line + "\n", joined + 1
    if pending.strip():
        yield pending


def _balanced(line: str) -> bool:
    """True when no single or double quote is left open (one pass, backslashes honoured)."""
    quote = ""
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            return True  # a comment: quotes after it do not count
    return not quote


def _tokens(line: str) -> list[str] | None:
    """The shell words and operators of one line; None when a quote is left open.

    A line without quotes, escapes, expansions or comments (most rendered commands) is cut at blanks,
    and words holding operator characters at their boundaries, which gives what :mod:`shlex` gives for
    it at a fraction of the cost; any other line goes through :mod:`shlex`.
    """
    if not any(c in line for c in _SHLEX_NEEDED):
        return _plain_tokens(line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote that survived joining: read no command from the line
        return None


def _plain_tokens(line: str) -> list[str]:
    """Words and runs of operator characters of a line without quoting (one pass, no regex)."""
    tokens: list[str] = []
    for word in line.split():
        if word.translate(_NO_OPERATOR_CHARS) == word:
            tokens.append(word)
            continue
        current, in_operator = "", False
        for char in word:
            is_operator = char in _OPERATOR_CHARS
            if current and is_operator != in_operator:
                tokens.append(current)
                current = ""
            current += char
            in_operator = is_operator
        tokens.append(current)
    return tokens


def _simple_commands(line: str) -> Iterator[list[str]]:
    words: list[str] = []
    tokens = _tokens(line)
    if tokens is None:
        return
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in _OPERATORS:
            if words:
                yield words
            words = []
        elif token[0] in "<>":
            # a redirection: drop it, its file descriptor ("2>&1" is "2", ">&", "1") and its target
            if words and words[-1].isdigit():
                words.pop()
            skip_next = True
        else:
            words.append(token)
    if words:
        yield words


def _peel(words: list[str]) -> list[str]:
    """Drop variable assignments and wrappers (``sudo -E``, ``timeout 600``, ``env A=B``) in front."""
    index = 0
    while index < len(words):
        word = words[index]
        base = word.rpartition("/")[2]
        if "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            index += 1
        elif base in _WRAPPERS:
            index = _skip_options(words, index + 1, _WRAPPER_ARGS.get(base, set()))
        elif base == "timeout":
            index = _skip_options(words, index + 1, {"-s", "-k", "--signal", "--kill-after"}) + 1
        else:
            break
    return words[index:]


def _skip_options(words: list[str], index: int, with_argument: set[str]) -> int:
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in with_argument else 1
    return index


def _inner(words: tuple[str, ...], remote_host: str | None) -> tuple[str, str | None] | None:
    """The text run by ``bash -c TEXT`` or ``ssh [OPTIONS] HOST TEXT...`` and the host it runs on."""
    program = words[0]
    if program in _SHELLS:
        for position, word in enumerate(words[1:-1], start=1):
            if word == "-c" or (word.startswith("-") and not word.startswith("--") and word.endswith("c")):
                return words[position + 1], remote_host
        return None
    if program == "ssh":
        index = 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in _SSH_ARG_OPTIONS else 1
        if index + 1 >= len(words):
            return None
        host = words[index].rpartition("@")[2]
        return " ".join(words[index + 1 :]), host or remote_host
    return None
