"""Remove secrets from text before it leaves the process (ledger, spool, REST calls, issue bodies, UI).

One table of named rules. Each rule finds the *secret part* of a shape (the value after
``password=``, the body of a private key, a token with a vendor prefix); every secret part found is
replaced by ``***`` and the words around it stay, so a redacted line still reads (and still
diagnoses) the same way::

    >>> redact("curl -H 'Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0' https://x")
    "curl -H 'Authorization: Bearer ***' https://x"

Linear time is the contract, whatever the input:

- every rule is an RE2 expression (google-re2: no backtracking, no backreferences, no lookaround)
  or a hand-written scanner that looks at each line a bounded number of times;
- text longer than :data:`WINDOW` is searched in windows of :data:`WINDOW` bytes that overlap by
  :data:`OVERLAP` on each side, so no single search covers more than ``WINDOW + 2 * OVERLAP`` bytes;
  a secret cut by a window edge is masked up to the next whitespace;
- after :data:`MAX_HITS` secrets of one rule in one window, the rest of that window is masked whole
  instead of being searched hit by hit (a stretch that dense in secrets has little else to keep);
- one RE2 set of literal triggers tells which rules can match in a window; the others do not run.

Plain Python, no Airflow. The Airflow adapters add Airflow's own secrets masker on top (it knows the
values of the connections and variables the task used). ``docs/security.md`` lists what is masked.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import re2

MASK = "***"
_MASK_BYTES = MASK.encode()

#: Texts longer than this are searched in windows of this many bytes.
WINDOW = 64 * 1024
#: Each window is searched with this many bytes of the neighbouring windows on either side.
OVERLAP = 8 * 1024
#: After this many secrets of one rule in one window, the rest of the window is masked whole.
MAX_HITS = 256


class _Match(Protocol):
    def span(self, group: int = 0) -> tuple[int, int]: ...


class _Pattern(Protocol):
    groups: int

    def finditer(self, text: bytes, pos: int = ..., endpos: int = ...) -> Iterator[_Match]: ...

    def search(self, text: bytes, pos: int = ..., endpos: int = ...) -> _Match | None: ...

    def fullmatch(self, text: bytes) -> _Match | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern and DFA fallback to stderr
    options.max_mem = 32 << 20
    return options


def _compile(pattern: str) -> _Pattern:
    """Compile an RE2 expression for UTF-8 bytes (raises ``re2.error`` on PCRE-only syntax).

    :param pattern: the expression.
    """
    compiled: _Pattern = re2.compile(pattern.encode(), _options())
    return compiled


Span = tuple[int, int]
#: ``RE2::UNANCHORED`` for the direct calls in :func:`_matches` (``None``: use ``finditer``).
_ANCHOR = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


@dataclass(frozen=True)
class Rule:
    """One kind of secret: where it sits, which part of it is masked, and what stays.

    :param name: what the rule finds, for tests and documentation.
    :param source: the RE2 expression (matched against UTF-8 bytes). The masked part is the first
        capturing group that took part in the match, or the whole match when there is none.
    :param triggers: lower-case literals of which every match contains at least one; the rule only
        runs where one of them occurs. Empty: the rule always runs.
    :param example: a line showing the shape (documentation and tests).
    :param accept: optional test ``accept(data, start, end)`` of the secret part ``data[start:end]``
        (it may look at the text around it); a candidate it rejects is left alone.
    """

    name: str
    source: str
    triggers: tuple[str, ...]
    example: str = ""
    accept: Callable[[bytes, int, int], bool] | None = None

    @cached_property
    def pattern(self) -> _Pattern:
        """The compiled expression, compiled on first use: a text wakes few rules (their triggers), so
        a process that redacts a few lines does not compile them all (``re2.error`` on PCRE-only syntax).
        """
        return _compile(self.source)

    def find(self, data: bytes, lo: int, hi: int) -> list[Span]:
        """Secret spans of matches inside ``data[lo:hi]`` (``data`` is the context for ``^``/``\\b``).

        After :data:`MAX_HITS` secrets, the rest of the window is one span (see the module notes).

        :param data: the whole text, UTF-8.
        :param lo: where the window starts.
        :param hi: where it ends.
        """
        spans: list[Span] = []
        accept = self.accept
        for groups in _matches(self.pattern, data, lo, hi):
            span = next((g for g in groups[1:] if g[0] != -1), groups[0])
            if span[0] == span[1] or (accept is not None and not accept(data, *span)):
                continue
            if len(spans) == MAX_HITS:
                spans.append((span[0], hi))
                break
            spans.append(span)
        return spans


def _matches(pattern: _Pattern, data: bytes, lo: int, hi: int) -> Iterator[tuple[Span, ...]]:
    """The spans of every group of every match in ``data[lo:hi]``, left to right.

    google-re2's ``finditer`` builds a match object per match and checks the group number on every
    ``span()`` call (several microseconds per match); this calls the same compiled ``RE2::Match``
    directly when the binding exposes it, and falls back to ``finditer`` otherwise.

    :param pattern: the compiled expression.
    :param data: the whole text.
    :param lo: where the window starts.
    :param hi: where it ends.
    """
    native = getattr(pattern, "_regexp", None)
    if native is None or _ANCHOR is None:
        for match in pattern.finditer(data, lo, hi):
            yield tuple(match.span(g) for g in range(pattern.groups + 1))
        return
    pos = lo
    while True:
        spans = native.Match(_ANCHOR, data, pos, hi)
        if spans[0][0] == -1:
            return
        yield spans
        end = spans[0][1]
        if end == hi:
            return
        pos = end if end > pos else pos + 1


# --- building blocks ------------------------------------------------------------------------------

#: A newline, real or JSON-escaped.
_NL = r"(?:\\r)?\\n|\r?\n"
_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
_BEGIN = r"-----BEGIN " + _PEM_LABEL + "-----"
_END = r"-----END " + _PEM_LABEL + "-----"
_B64_LINE = r"[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: [^\r\n\\]*)?[ \t]*"

#: A value: \"escaped-quoted\", "double-quoted", 'single-quoted' (the secret is inside the quotes), or
#: bare (up to whitespace, a quote, a backslash or one of ``,;&<>)}]``; it never starts with ``=`` or
#: ``:`` so ``token == x`` and ``Token::parse`` are not values).
_QUOTED = r"""\\"((?:[^"\\\r\n]|\\[^"\r\n])*)\\"|"((?:[^"\\\r\n]|\\.)*)"|'([^'\r\n]*)'"""
_BARE = r"""([^\s'"\\,;&<>(){}\[\]=:][^\s'"\\,;&<>)}\]]*)"""
_VALUE = "(?:" + _QUOTED + "|" + _BARE + ")"
_ANY_VALUE = r"""(?:'([^'\r\n]*)'|"([^"\r\n]*)"|([^\s'"<][^\s'"]*))"""
#: The rest of one shell command (no line break, no ``|``, ``;`` or ``&``), as little as possible.
_SAME_COMMAND = r"[^\n|;&]*?"

#: Names whose value is a secret, wherever they end an identifier (``PGPASSWORD``, ``dbpassword``,
#: ``x-vault-token``, ``client-key-data``) ...
_ANY_PREFIX_NAMES = (
    r"password|passwd|passphrase|passcode|secret|token|credentials?|creds|apikey|api[_-]key|"
    r"access[_-]?key(?:[_-]?id)?|secret[_-]?key|private[_-]?key(?:[_-]?id)?|client[_-]?secret|"
    r"(?:key|cert|certificate)[_-]data|dockerconfigjson|dockercfg|connection[_-]?string|webhook[_-]?url"
)
#: ... and short names that count only as a whole word or after ``_ . -`` (``db_pass``, not ``bypass``).
_SEGMENT_NAMES = r"pass|pwd|pw|auth|sig"
_KEY = r"(?i:" + _ANY_PREFIX_NAMES + r"|(?:\b|[_.-])(?:" + _SEGMENT_NAMES + r"))"
#: The closing quote of a quoted name (``"password":``, ``\"password\":``).
_KEY_QUOTE = r"""\\?["']"""
_NAME_TRIGGERS = (
    "pass",
    "pw",
    "secret",
    "token",
    "cred",
    "key",
    "auth",
    "sig",
    "dockercfg",
    "dockerconfigjson",
    "connection",
    "webhook",
)

#: Bare words after ``name:`` that are prose, not a secret ("token: expired", "password: required").
_PROSE = frozenset(
    """true false yes no none null nil empty missing required invalid expired denied unknown not n/a
    redacted hidden masked set unset enabled disabled ok error failed found present absent rejected
    revoked forbidden unauthorized incorrect wrong mismatch changed updated provided supplied generated
    permission access authentication authorization the a an is was has for from must should cannot
    could did does will would please see check use using default optional""".split()  # noqa: SIM905
)


def _not_prose(data: bytes, start: int, end: int) -> bool:
    """A value after ``name:`` that is not prose: not a common word, not a word that a sentence goes on
    after (``creds: unable to reach``), not a word that is a label itself (``token: ConnectError:``);
    a single word alone at the end of its line is a value.

    :param data: the text.
    :param start: where the value starts.
    :param end: where it ends.
    """
    value = data[start:end]
    word = value.rstrip(b".,:;!?")
    if word.lower().decode("utf-8", "replace") in _PROSE:
        return False
    if value.endswith(b":") and word.isalpha():  # a label that goes on: "token: ConnectError: ..."
        return False
    after = data[end : end + 2]
    return not (word.isalpha() and after[:1] in (b" ", b"\t") and after[1:2].isalpha())


def _high_entropy(data: bytes, start: int, end: int) -> bool:
    """A random-looking value: 16 characters or more, at least 3 bits of entropy a character, and
    upper case, lower case and digits; or 32 hexadecimal digits or more; or 20 letters and digits or
    more without separators (``osp-undercloud-nh2jxo9r-0`` is a name, not a key).

    :param data: the text.
    :param start: where the value starts.
    :param end: where it ends.
    """
    value = data[start:end]
    if len(value) < 16 or not any(48 <= c <= 57 for c in value):
        return False
    counts = Counter(value)
    if -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) < 3.0:
        return False
    mixed = value.upper() != value and value.lower() != value
    return mixed or (len(value) >= 32 and _HEX.issuperset(value)) or (len(value) >= 20 and value.isalnum())


#: Flags that ask for a secret or switch one off instead of taking one (``--ask-vault-pass``).
_BOOLEAN_FLAG = _compile(r"-(?:ask|no|prompt|skip|show|print|reset)[-_][\w-]*$")


def _flag_value(data: bytes, start: int, end: int) -> bool:
    """A value given to a secret flag, not the next argument after a flag that takes none.

    :param data: the text.
    :param start: where the value starts.
    :param end: where it ends.
    """
    before = data[max(0, start - 80) : start].rstrip(b" \t=\"'\\")
    return _BOOLEAN_FLAG.search(before.lower()) is None


def _basic_credentials(data: bytes, start: int, end: int) -> bool:
    """Base64 that decodes to ``user:password``.

    :param data: the text.
    :param start: where the value starts.
    :param end: where it ends.
    """
    value = data[start:end]
    try:
        decoded = base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and decoded.isascii()


# --- the rules ------------------------------------------------------------------------------------


_Line = tuple[int, int, int, int]  # token start, token end, line start, line end


class _PemBodyRule(Rule):
    """Runs of base64 lines that are private-key body lines although no BEGIN line is in sight.

    The expression finds runs of consecutive lines that each end with a base64 token of at least 16
    characters (anything may precede it: a log prefix). Each line's token is masked (the line and its
    prefix stay) when a ``PRIVATE KEY`` marker line comes right before or after the run. Without a
    marker, a stretch of the run is masked when it has two or more lines whose tokens have one width
    of 40 or more (the last line may be shorter), and together they look like base64 of random
    bytes: upper case, lower case and digits, not only hexadecimal digits, not all starting with
    ``/`` (paths). A run next to a public marker line (``CERTIFICATE``, ``PUBLIC KEY``) and no
    private one stays.
    """

    def find(self, data: bytes, lo: int, hi: int) -> list[Span]:
        """Secret spans of the body-line runs inside ``data[lo:hi]``.

        :param data: the whole text, UTF-8.
        :param lo: where the window starts.
        :param hi: where it ends.
        """
        spans: list[Span] = []
        markers: tuple[dict[int, bool], dict[int, bool]] | None = None
        for groups in _matches(self.pattern, data, lo, hi):
            run_start, run_end = groups[0]
            markers = markers or _markers(data, lo, hi)
            before = markers[1].get(_previous_line_end(data, run_start))
            after = markers[0].get(_next_line(data, run_end))
            tokens = _last_tokens(data, run_start, run_end)
            if before or after:
                spans += tokens
            elif before is None and after is None:
                spans += _random_base64_runs(data, tokens)
        return spans


def _last_tokens(data: bytes, start: int, end: int) -> list[Span]:
    """The span of the last whitespace-separated token of each line in ``data[start:end]``.

    :param data: the text.
    :param start: where the first line starts.
    :param end: where the last line ends.
    """
    tokens: list[Span] = []
    for line in data[start:end].split(b"\n"):
        stripped = line.rstrip(b" \t\r")
        cut = max(stripped.rfind(b" "), stripped.rfind(b"\t")) + 1
        tokens.append((start + cut, start + len(stripped)))
        start += len(line) + 1
    return tokens


def _next_line(data: bytes, line_end: int) -> int:
    """Where the line after the one ending at ``line_end`` (before its ``\\r\\n`` or ``\\n``) starts."""
    if data[line_end : line_end + 1] == b"\r":
        line_end += 1
    return line_end + 1


def _previous_line_end(data: bytes, line_start: int) -> int:
    end = line_start - 1
    return end - 1 if end > 0 and data[end - 1 : end] == b"\r" else end


#: A PEM marker and the rest of its line.
_MARKER = _compile(r"-----(?:BEGIN|END) [A-Z0-9]+(?: [A-Z0-9]+)*-----[^\r\n]*")


def _markers(data: bytes, lo: int, hi: int) -> tuple[dict[int, bool], dict[int, bool]]:
    """Line starts and line ends of PEM marker lines in the window: ``True`` for a private key.

    :param data: the whole text.
    :param lo: where the window starts.
    :param hi: where it ends.
    """
    starts: dict[int, bool] = {}
    ends: dict[int, bool] = {}
    for match in _MARKER.finditer(data, lo, hi):
        start, line_end = match.span(0)
        private = b"PRIVATE KEY" in data[start:line_end]
        line_start = max(data.rfind(b"\n", lo, start) + 1, lo)
        starts[line_start] = starts.get(line_start, False) or private
        ends[line_end] = ends.get(line_end, False) or private
    return starts, ends


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _random_base64_runs(data: bytes, tokens: list[Span]) -> list[Span]:
    """The tokens that form key-body stretches: two or more lines of one width (40 or more), the
    last line of a stretch may be shorter, and together they look like base64 of random bytes.

    :param data: the text.
    :param tokens: the last token of each line of a run of candidate lines.
    """
    found: list[Span] = []
    i = 0
    while i < len(tokens):
        width = tokens[i][1] - tokens[i][0]
        j = i + 1
        while j < len(tokens) and tokens[j][1] - tokens[j][0] == width:
            j += 1
        if j < len(tokens) and tokens[j][1] - tokens[j][0] < width:
            j += 1  # the short last line
        stretch = tokens[i:j]
        if width >= 40 and len(stretch) >= 2 and _looks_random(data, stretch):
            found += stretch
        i = j
    return found


def _looks_random(data: bytes, tokens: list[Span]) -> bool:
    """Tokens that together look like base64 of random bytes: upper case, lower case and digits, not
    only hexadecimal digits, not all starting with ``/`` (paths).

    :param data: the text.
    :param tokens: the tokens.
    """
    values = [data[start:end] for start, end in tokens]
    if all(value.startswith(b"/") for value in values):
        return False
    joined = b"".join(values)
    classes = (
        joined.upper() != joined,
        joined.lower() != joined,
        len(joined.translate(None, _DIGITS)) < len(joined),
    )
    return all(classes) and not _HEX.issuperset(joined.rstrip(b"="))


_DIGITS = b"0123456789"

#: A line that ends with a base64 token of 16 characters or more, and a run of such lines.
_BODY_LINE = r"(?:[^\n]*[ \t])?[A-Za-z0-9+/]{16,}={0,2}[ \t]*\r?"
_BODY_RUN = r"(?m)^" + _BODY_LINE + r"(?:\n" + _BODY_LINE + r")*$"

RULES: tuple[Rule, ...] = (
    Rule(
        "private_key_block",
        _BEGIN + r"((?s:.*?))" + _END,
        ("private key",),
        "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow...\\n-----END RSA PRIVATE KEY-----",
    ),
    Rule(
        "private_key_head",
        _BEGIN + r"[ \t]*((?:(?:" + _NL + ")" + _B64_LINE + r")*)(?:" + _NL + r'|\z|")',
        ("private key",),
        "-----BEGIN OPENSSH PRIVATE KEY----- then body lines, the END line cut off",
    ),
    Rule(
        "private_key_tail",
        r"(?:(?m:^)|\\n|\")((?:[ \t]*[A-Za-z0-9+/=]+[ \t]*(?:" + _NL + r"))+)[ \t]*" + _END,
        ("private key",),
        "body lines then -----END EC PRIVATE KEY-----, the BEGIN line cut off",
    ),
    _PemBodyRule(
        "private_key_body_lines",
        _BODY_RUN,
        (),
        "two or more base64 lines of a key body, neither BEGIN nor END line in the text",
    ),
    Rule(
        "url_credentials",
        r"""\b[A-Za-z][A-Za-z0-9+._-]*://[^\s:/@'"<>]*:([^\s/'"<>]+)@""",
        ("://",),
        "postgresql://airflow:hunter2@db:5432/airflow",
    ),
    Rule(
        "url_token_user",
        r"""\b[A-Za-z][A-Za-z0-9+._-]*://([A-Za-z0-9_-]{20,})@""",
        ("://",),
        "https://<40 hex digits>@github.com/org/repo.git (a token as the user name)",
        accept=_high_entropy,
    ),
    Rule(
        "authorization_header",
        r"""(?i)(?:proxy-)?authorization(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?"""
        r"""(?:(?:bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256|sso-key|apikey)[ \t]+)?"""
        r"""([^\s'",;\\]+)""",
        ("authorization",),
        "Authorization: Basic dXNlcjpwYXNz",
    ),
    Rule(
        "api_key_header",
        r"""(?i)\b(?:x-vault-token|x-api-key|x-auth-token|private-token|x-github-token|x-goog-api-key|"""
        r"""x-amz-security-token|ocp-apim-subscription-key|x-functions-key|x-registry-auth|api-key)"""
        r"""(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?([^\s'",;\\]+)""",
        ("token", "key", "x-registry-auth"),
        "X-Vault-Token: s.abcdefghijklmnopqrstuvwx",
    ),
    Rule(
        "cookie_header",
        r"""(?i)(?:^|[\s"'{,])(?:set-)?cookie(?:\\?["'])?[ \t]*:[ \t]*(?:\\?["'])?([^\r\n"'\\]+)""",
        ("cookie",),
        "Cookie: session=8f2a...; csrftoken=...",
    ),
    Rule(
        "bearer_token",
        r"(?i)\bbearer[ \t]+([A-Za-z0-9._~+/=-]{8,})",
        ("bearer",),
        "bearer abcdefghijklmnop123",
    ),
    Rule(
        "basic_credentials",
        r"\b[Bb]asic[ \t]+([A-Za-z0-9+/]{6,}={0,2})",
        ("basic",),
        "Basic dXNlcjpwYXNz (only when it decodes to user:password)",
        accept=_basic_credentials,
    ),
    Rule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){2,}",
        ("eyj",),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    ),
    Rule(
        "vendor_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_-]{20,}|"
        r"hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{24}\b|b\.AAAAAQ[A-Za-z0-9_-]{20,}|"
        r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b|AIza[0-9A-Za-z_-]{35}|"
        r"xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,}|npm_[A-Za-z0-9]{36}\b|"
        r"pypi-[A-Za-z0-9_-]{50,}|[sr]k_(?:live|test)_[0-9A-Za-z]{16,}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}|"
        r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|dckr_pat_[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,})",
        (
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
            "hvs.",
            "hvb.",
            "hvr.",
            "s.",
            "b.aaaaaq",
            "akia",
            "asia",
            "agpa",
            "aida",
            "aroa",
            "anpa",
            "anva",
            "aipa",
            "abia",
            "acca",
            "aiza",
            "xox",
            "xapp-",
            "npm_",
            "pypi-",
            "k_live_",
            "k_test_",
            "sk-",
            "sg.",
            "dckr_pat_",
            "hf_",
        ),
        "ghp_..., glpat-..., hvs...., s.<24>, AKIA..., AIza..., xoxb-..., npm_..., pypi-..., sk_live_...",
    ),
    Rule(
        "webhook_url",
        r"(?i)(?:hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/|"
        r"webhook\.office\.com/webhookb2/)([A-Za-z0-9_@/+=-]+)",
        ("hooks.slack.com", "/api/webhooks/", "webhook.office.com"),
        "https://hooks.slack.com/services/T000/B000/XXXX",
    ),
    Rule(
        "azure_connection_string",
        r"""(?i)(?:\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|SharedSecretValue)=([^;\s'"]+)|"""
        r"""[?&;]sig=([^&;\s'"#]+))""",
        ("accountkey", "sharedaccess", "sharedsecret", "sig="),
        "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc==;EndpointSuffix=core.windows.net",
    ),
    Rule(
        "netrc_password",
        r"\bmachine[ \t]+\S+(?:[ \t]+(?:login|account|port)[ \t]+\S+)*[ \t]+password[ \t]+(\S+)",
        ("machine",),
        "machine registry.lab login ci password s3cret (.netrc)",
    ),
    Rule(
        "curl_user",
        r"\bcurl\b"
        + _SAME_COMMAND
        + r"""[ \t](?:-u|--user|--proxy-user|-U)[ \t]*=?[ \t]*["']?[^\s:"']*:([^\s"']+)""",
        ("curl",),
        "curl -u deploy:s3cret https://repo",
    ),
    Rule(
        "command_password",
        r"(?:\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mariadb[a-z-]*)\b"
        + _SAME_COMMAND
        + r"[ \t]-p(?:'([^'\r\n]*)'|\"([^\"\r\n]*)\"|([^\s'\"<][^\s'\"]*))|"
        r"\bsshpass(?:[ \t]+-[A-Za-oq-z]\S*)*[ \t]+-p[ \t]*" + _ANY_VALUE + "|"
        r"\bredis-cli\b" + _SAME_COMMAND + r"[ \t]-a[ \t]+" + _ANY_VALUE + "|"
        r"\b(?:docker|podman|buildah|skopeo|helm|oc|nerdctl)\b"
        + _SAME_COMMAND
        + r"\blogin\b"
        + _SAME_COMMAND
        + r"[ \t]-p[ \t]+"
        + _ANY_VALUE
        + ")",
        ("mysql", "mariadb", "sshpass", "redis-cli", "login"),
        "mysql -u root -psecret, sshpass -p pw ssh, podman login -u u -p pw quay.io",
    ),
    Rule(
        "secret_flag",
        r"""(?i)(?:^|[\s"'])--?(?:[a-z0-9]{1,32}[-_]){0,4}(?:password|passwd|pass|pwd|secret|token|api-?key|"""
        r"""access-key|secret-key|client-secret|passphrase|credentials?|(?:src|dest)?(?:store|key)pass)"""
        r"""(?:=""" + _VALUE + r"""|[ \t]+(?:""" + _QUOTED + r"""|([^\s'"\\-][^\s'"\\]*)))""",
        ("pass", "pw", "secret", "token", "key", "cred"),
        "--db-password X, --password=x, -storepass changeit (not --ask-vault-pass playbook.yml)",
        accept=_flag_value,
    ),
    Rule(
        "secret_assignment",
        _KEY
        + r"(?:(?:"
        + _KEY_QUOTE
        + r")?[ \t]{0,8}(?:=>|:=|=)[ \t]{0,8}"
        + _VALUE
        + "|"
        + _KEY_QUOTE
        + r"[ \t]{0,8}:[ \t]{0,8}(?:"
        + _QUOTED
        + r")|[ \t]{0,8}:[ \t]{1,8}(?:"
        + _QUOTED
        + "))",
        _NAME_TRIGGERS,
        'PGPASSWORD=x, dbpassword=x, "password": "x", token: "x", client-key-data: LS0t...',
    ),
    Rule(
        "secret_field",
        _KEY + "(?:" + _KEY_QUOTE + r")?[ \t]{0,8}:[ \t]{0,8}" + _BARE,
        _NAME_TRIGGERS,
        "password: x (YAML); prose after the colon stays (token: expired, creds: unable to reach)",
        accept=_not_prose,
    ),
    Rule(
        "high_entropy_assignment",
        r"(?i:[A-Za-z0-9][_.-]?key|salt|seed|signature|hmac|nonce|session[_-]?id|sessid|license)"
        r"(?:\\?[\"'])?[ \t]{0,8}(?:=>|:=|=|:)[ \t]{0,8}" + _VALUE,
        ("key", "salt", "seed", "signature", "hmac", "nonce", "session", "sessid", "license"),
        "encryption_key=9f86d081884c7d659a2feaa0c55ad015 (random-looking values only)",
        accept=_high_entropy,
    ),
)

# --- the engine -----------------------------------------------------------------------------------

_WHITESPACE = _compile(r"\s")


def _trigger_set() -> tuple[re2.Set, list[frozenset[int]]]:
    """One RE2 set of every rule's triggers, and each rule's trigger numbers in it.

    A set of case-insensitive literals compiles to an automaton no bigger than the trie of the
    literals (a few hundred states), far below the memory budget, so its DFA cannot give up half way
    (which would make ``Match`` answer "nothing", silently).
    """
    literals = sorted({t for rule in RULES for t in rule.triggers})
    matcher = re2.Set.SearchSet(_options())
    for literal in literals:
        matcher.Add(("(?i)" + re2.escape(literal)).encode())
    matcher.Compile()
    index = {t: i for i, t in enumerate(literals)}
    return matcher, [frozenset(index[t] for t in rule.triggers) for rule in RULES]


_TRIGGERS, _RULE_TRIGGERS = _trigger_set()


def _active_rules(data: bytes, lo: int, hi: int) -> list[Rule]:
    """The rules that can match in ``data[lo:hi]``: those without triggers, and those with one there.

    :param data: the whole text.
    :param lo: where the window starts.
    :param hi: where it ends.
    """
    found = frozenset(_TRIGGERS.Match(memoryview(data)[lo:hi]) or ())
    return [rule for rule, wanted in zip(RULES, _RULE_TRIGGERS, strict=True) if not wanted or found & wanted]


def _windows(size: int) -> Iterator[tuple[int, int]]:
    if size <= WINDOW + OVERLAP:
        yield 0, size
        return
    for start in range(0, size, WINDOW):
        yield max(0, start - OVERLAP), min(size, start + WINDOW + OVERLAP)


def _find_spans(data: bytes, use_triggers: bool = True) -> list[Span]:
    """Every secret span in ``data``, window by window.

    A span that ends at a window's edge (a secret cut by the edge) goes on to the next whitespace.

    :param data: the text, UTF-8.
    :param use_triggers: skip the rules whose triggers are absent (tests compare with ``False``).
    """
    spans: list[Span] = []
    size = len(data)
    covered = 0  # how far a span cut by a window edge has already been extended
    for lo, hi in _windows(size):
        cut = False
        for rule in _active_rules(data, lo, hi) if use_triggers else RULES:
            found = rule.find(data, lo, hi)
            cut = cut or any(end == hi for _, end in found)
            spans += found
        if cut and covered <= hi < size:
            after = _WHITESPACE.search(data, hi)
            covered = size if after is None else after.span(0)[0]
            spans.append((hi, covered))
    return spans


def _merge(data: bytes, spans: list[Span]) -> list[Span]:
    """Sort and join overlapping or touching spans; widen them to whole UTF-8 characters."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        while start > 0 and 0x80 <= data[start] < 0xC0:
            start -= 1
        while end < len(data) and 0x80 <= data[end] < 0xC0:
            end += 1
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _redact_bytes(data: bytes, use_triggers: bool = True) -> bytes | None:
    """``data`` with every secret masked, or ``None`` when there was none.

    :param data: the text, UTF-8.
    :param use_triggers: see :func:`_find_spans`.
    """
    spans = _find_spans(data, use_triggers)
    if not spans:
        return None
    pieces: list[bytes] = []
    last = 0
    for start, end in _merge(data, spans):
        pieces += (data[last:start], _MASK_BYTES)
        last = end
    pieces.append(data[last:])
    return b"".join(pieces)


#: Most passes of :func:`redact` over its own output (each shortens the text or ends the loop).
_MAX_PASSES = 4


def redact(text: str) -> str:
    """Return ``text`` with every secret the :data:`RULES` recognise replaced by ``***``.

    Time and memory are linear in the length of ``text``, whatever it holds.

    :param text: any text: a log tail, an exception message, a command line.
    """
    if not text:
        return text
    data = text.encode("utf-8", "surrogatepass")
    out = _redact_bytes(data)
    if out is None:
        return text
    # Masking can join what was apart (a value masked up to a PEM END line leaves the block's BEGIN and a
    # later END around one mask), and overlapping candidates hide one another (in "password=token:
    # token: s3cr3t" the first assignment swallows the label of the second): redact the result again
    # until nothing changes. Redacting redacted text is then a no-op, and no secret is left that a
    # second look would find. Each pass is linear; a text in which nothing was masked takes one.
    for _ in range(_MAX_PASSES - 1):
        again = _redact_bytes(out)
        if again is None or again == out:
            break
        out = again
    try:
        return out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # a span cut an undecodable byte sequence
        return out.decode("utf-8", "replace")


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Redact lines as one text, so secrets that span lines (private keys) are caught whole.

    :param lines: the lines (without newlines).
    :return: the redacted lines; a private key block between its BEGIN and END lines collapses into
        the line ``-----BEGIN ... PRIVATE KEY-----***-----END ... PRIVATE KEY-----``.
    """
    items = list(lines)
    if not items:
        return []
    joined = "\n".join(items)
    out = redact(joined)
    return items if out is joined else out.split("\n")


#: ANSI/VT escape sequences (CSI, OSC, two-byte escapes), the other C0/C1 control characters but tab and
#: newline, and the Unicode bidirectional controls (which reorder what a terminal shows): what a terminal
#: would act on instead of printing. Every repetition is bounded and
#: every alternative starts with a distinct character, so the match is linear.
_CONTROL = re.compile(
    r"\x1b\[[0-?]{0,64}[ -/]{0,16}[@-~]|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?|\x1b[@-_]?|"
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def strip_control(text: str) -> str:
    """Remove terminal control sequences and control characters (keeps tab and newline).

    :param text: text about to be printed or stored.
    """
    return _CONTROL.sub("", text) if text else text


#: Dictionary keys whose value is a secret whatever it looks like (:func:`redact_data`).
_SENSITIVE_KEY = _compile(
    r"(?i:[A-Za-z0-9_.-]*(?:" + _ANY_PREFIX_NAMES + r"|authorization|cookie)|"
    r"(?:[A-Za-z0-9_.-]*[_.-])?(?:" + _SEGMENT_NAMES + "))"
)


def _sensitive_key(key: object) -> bool:
    if not isinstance(key, str) or len(key) > 256:
        return False
    return _SENSITIVE_KEY.fullmatch(key.encode("utf-8", "surrogatepass")) is not None


def redact_data(value: object, max_depth: int = 32) -> object:
    """Redact every string inside JSON-like data (dicts, lists, tuples); keys are kept as they are.

    A string or number stored under a secret's name (``password``, ``db_token``, ``client-key-data``,
    ``auth``) is replaced by ``"***"`` whatever it looks like.

    :param value: the data.
    :param max_depth: nesting deeper than this is replaced by ``"***"`` (never recursed into).
    """
    if isinstance(value, str):
        return redact(value)
    if max_depth <= 0:
        return MASK if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {k: _redact_item(k, v, max_depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > 1 and all(isinstance(v, str) for v in value):
            # a log tail: one pass over the lines joined, so a key spread over lines is caught whole (its
            # block collapses into one line: the list gets shorter; each line alone would miss its body)
            return redact_lines(value)
        return [redact_data(v, max_depth - 1) for v in value]
    return value


def _redact_item(key: object, value: object, max_depth: int) -> object:
    if _sensitive_key(key) and isinstance(value, str | bytes | int | float) and not isinstance(value, bool):
        return MASK if value not in ("", b"") else value
    return redact_data(value, max_depth)


__all__ = ["MASK", "RULES", "Rule", "redact", "redact_data", "redact_lines", "strip_control"]
