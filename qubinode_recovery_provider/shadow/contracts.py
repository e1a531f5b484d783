"""Inferred VM contracts: which domains a successful task meant to create, start, stop or delete.

DAGs that declare nothing (no ``libvirt_domain`` outlet, no ``qubinode_vm`` param) still say what they
do: their rendered template fields (``bash_command``, an SSH ``command``), the ``sourceCode`` facet
OpenLineage reports, and their log. This module reads those texts, never runs them:

- ``kcli create vm [-i IMAGE] [-p PROFILE] [-P key=value ...] NAME`` creates NAME (``-P start=false``:
  defined only); ``kcli create plan [-f FILE] [-P ...] PLAN`` creates the VMs of the plan file when the
  file is readable here; ``kcli start vm NAME...`` starts; ``kcli stop vm`` / ``kcli delete vm`` are
  negative contracts; ``kcli -C CLIENT`` names the host;
- ``virt-install --name NAME [--connect URI]`` (not with ``--print-xml`` / ``--dry-run``;
  ``--noreboot``: defined only);
- ``virsh [-c URI] start|create|define|destroy|shutdown|undefine`` (``create``/``define`` of an XML
  file readable here give the domain's ``<name>``);
- ``ansible-playbook FILE`` (readable here) or a rendered playbook with ``community.libvirt.virt``
  tasks that name the domain (``state``/``command``);
- log lines: ``Deploying vm NAME from image IMAGE`` (kcli), ``Domain 'NAME' created|started|defined|
  destroyed|undefined`` (virsh), which confirm a command's contract or name the VMs of a plan;
- Ansible's output (its default callback): a ``TASK [NAME]`` banner whose task is a
  ``community.libvirt.virt`` task of the playbook the task ran (or shows the module's ``name=...``
  arguments), then its ``changed: [HOST]`` / ``ok: [HOST] => (item=LABEL)`` lines (the loop item names
  the domain when the task's ``name`` is ``{{ item }}`` or ``{{ item.KEY }}``) and, with ``-v``, the
  define command's result ``"created": "NAME"``.

Each contract has a confidence and its evidence. Within a run the last action on a domain wins (a
later ``kcli delete vm`` cancels an earlier create). Plain Python; log lines are matched with RE2
(linear time), command lines with :mod:`shlex`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.redaction import redact
from qubinode_recovery_provider.shadow.commands import Command, split_commands

#: Largest plan, playbook or domain XML file read from disk.
MAX_FILE_BYTES = 1 << 20
#: The most log characters read per task (the tail is what matters least: kcli prints names early).
MAX_LOG_CHARS = 256 * 1024
#: The most contracts taken from one task.
MAX_CONTRACTS_PER_TASK = 200

CREATE, START, DEFINE, STOP, DELETE = "create", "start", "define", "stop", "delete"
NEGATIVE_ACTIONS = frozenset({STOP, DELETE})
#: The state each action promises (negative actions promise nothing a scan reports on).
EXPECTED = {CREATE: "running", START: "running", DEFINE: "defined", STOP: "stopped", DELETE: "absent"}

CONFIDENCE = {"command": 0.8, "plan": 0.7, "playbook": 0.7, "log": 0.6}
LOG_CONFIRMS = 0.1
_UNRESOLVED = ("$", "`", "{", "}", "*", "?", "[", "]", "<", ">", "(", ")", "'", '"', "/", " ")


@dataclass(slots=True)
class Contract:
    """One domain a task meant to act on.

    :param name: the domain name
    :param action: create, start, define, stop or delete
    :param host: the host named by the command (kcli ``-C``, a libvirt URI, ``ssh HOST``); None: default
    :param tool: kcli, virt-install, virsh, ansible or log
    :param confidence: how sure the reading is, 0..1
    :param evidence: where it was read, one line each (redacted)
    :param task_id: the task it was read from
    """

    name: str
    action: str
    host: str | None
    tool: str
    confidence: float
    evidence: list[str] = field(default_factory=list)
    task_id: str = ""

    @property
    def expected_state(self) -> str:
        return EXPECTED[self.action]

    @property
    def negative(self) -> bool:
        return self.action in NEGATIVE_ACTIONS


@dataclass(slots=True)
class TaskInference:
    """What was read for one task: the contracts and notes on what could not be read."""

    task_id: str
    contracts: list[Contract] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    read_files: bool = False  # a command read a file (a plan, a playbook, a domain XML)


def mentions_vm_tool(text: str | bytes | None) -> bool:
    """Cheap test before any parsing: does the text name one of the VM tools (``kcli``, ``virsh``,
    anything with ``virt``: virt-install, Ansible's virt modules; ``ansible-playbook``)? Called for every
    lineage event, so four plain substring tests, no loop."""
    if not text:
        return False
    if isinstance(text, bytes):
        return b"kcli" in text or b"virt" in text or b"virsh" in text or b"ansible-playbook" in text
    return "kcli" in text or "virt" in text or "virsh" in text or "ansible-playbook" in text


# --- one task -------------------------------------------------------------------------------------


def infer_task(
    task_id: str,
    texts: Mapping[str, str],
    log: str | None = None,
    remote_host: str | None = None,
    cwd: str | None = None,
) -> TaskInference:
    """The contracts of one successful task.

    :param texts: ``origin -> text`` (``rendered bash_command``, ``OpenLineage sourceCode``); texts
        that say the same are read once
    :param log: the task's log (the attempt that succeeded), or None
    :param remote_host: the host an SSH task ran its command on (rendered ``remote_host``)
    :param cwd: the task's working directory (rendered ``cwd``), for relative plan and playbook paths
    """
    result = TaskInference(task_id)
    seen: set[str] = set()
    playbooks: list[Any] = []  # what the task's Ansible output is read against
    for origin, text in texts.items():
        if not mentions_vm_tool(text):
            continue
        if text.strip() in seen:
            result.sources.append(f"{origin} (the same text)")
            continue
        seen.add(text.strip())
        result.sources.append(origin)
        if _looks_like_playbook(text):
            playbooks.append(_load_yaml(text))
            result.contracts.extend(_playbook_contracts(playbooks[-1], f"{origin} (playbook)", result.notes))
            continue
        for command, quoted in _commands(text, remote_host):
            result.read_files = result.read_files or _reads_files(command)
            found = _contracts_of(command, cwd, result.notes)
            for contract in found:
                contract.evidence.insert(0, f"{origin}: {quoted}")
            result.contracts.extend(found)
            if command.program == "ansible-playbook":
                playbooks.extend(_playbook_files(command, cwd))
    if log:
        result.sources.append("log")
        text = log[:MAX_LOG_CHARS]
        _merge_log(result, log_contracts(text))
        _merge_output(result, ansible_output_contracts(text, playbooks))
    del result.contracts[MAX_CONTRACTS_PER_TASK:]
    for contract in result.contracts:
        contract.task_id = task_id
    return result


def prepare_text(text: str, remote_host: str | None = None) -> None:
    """Parse a command text into the caches :func:`infer_task` reads it from (the same results, only
    earlier: the scan does this while it waits for its lineage workers). Playbooks and commands that
    read a file are left to :func:`infer_task`."""
    if not mentions_vm_tool(text) or _looks_like_playbook(text):
        return
    for command, _ in _commands(text, remote_host):
        if not _reads_files(command):
            _pure_contracts(command)


def _merge_log(result: TaskInference, from_log: list[Contract]) -> None:
    """Log lines confirm a command's contract (higher confidence) or add one the commands did not name."""
    by_name = {(c.name, c.action in NEGATIVE_ACTIONS): c for c in result.contracts}
    for contract in from_log:
        known = by_name.get((contract.name, contract.negative))
        if known is not None:
            known.confidence = min(0.95, known.confidence + LOG_CONFIRMS)
            known.evidence.extend(contract.evidence)
        else:
            result.contracts.append(contract)
            by_name[(contract.name, contract.negative)] = contract


def _merge_output(result: TaskInference, from_output: list[Contract]) -> None:
    """Ansible's output confirms the playbook's contract for the same domain, action and host (or a
    contract without a host); otherwise it adds its own, in the order the tasks ran."""
    for contract in from_output:
        known = next(
            (
                c
                for c in result.contracts
                if (c.name, c.action) == (contract.name, contract.action) and c.host in (None, contract.host)
            ),
            None,
        )
        if known is None:
            result.contracts.append(contract)
        elif contract.evidence[0] not in known.evidence:
            known.confidence = min(0.95, known.confidence + LOG_CONFIRMS)
            known.evidence.extend(contract.evidence)


@functools.lru_cache(maxsize=4096)
def _commands(text: str, remote_host: str | None) -> tuple[tuple[Command, str], ...]:
    """The simple commands of a text with their redacted evidence text; cached, since the runs of one
    DAG task mostly render the same text."""
    return tuple(
        (c, redact(c.text)[:300]) for c in split_commands(text, remote_host) if c.program in _READERS
    )


def _contracts_of(command: Command, cwd: str | None, notes: list[str]) -> list[Contract]:
    """:func:`command_contracts`, from a cache for commands that read no file (same words, same result)."""
    if _reads_files(command):
        return command_contracts(command, cwd, notes)
    found, new_notes = _pure_contracts(command)
    notes.extend(new_notes)
    return [replace(c, evidence=list(c.evidence)) for c in found]


@functools.lru_cache(maxsize=4096)
def _pure_contracts(command: Command) -> tuple[tuple[Contract, ...], tuple[str, ...]]:
    notes: list[str] = []
    return tuple(command_contracts(command, None, notes)), tuple(notes)


def _reads_files(command: Command) -> bool:
    """Whether reading ``command`` opens a file (a plan, a playbook, a domain XML)."""
    words = command.words
    return (
        command.program == "ansible-playbook"
        or (command.program == "kcli" and "plan" in words)
        or (command.program == "virsh" and ("create" in words or "define" in words))
    )


# --- commands -------------------------------------------------------------------------------------


def command_contracts(
    command: Command, cwd: str | None = None, notes: list[str] | None = None
) -> list[Contract]:
    """The contracts of one simple command (empty for commands of other programs)."""
    notes = notes if notes is not None else []
    reader = _READERS.get(command.program)
    if reader is None:
        return []
    found: list[Contract] = reader(command, command.cwd or cwd, notes)
    return found


def _name_ok(name: str | None, what: str, notes: list[str]) -> bool:
    if not name:
        return False
    if any(c in name for c in _UNRESOLVED) or name.startswith("-"):
        notes.append(f"{what}: domain name {redact(name)[:80]!r} is not a literal name; not inferred")
        return False
    return True


def _kcli(command: Command, cwd: str | None, notes: list[str]) -> list[Contract]:
    words = list(command.words[1:])
    host = command.remote_host
    while words and words[0].startswith("-"):  # kcli's global options come before the verb
        option = words.pop(0)
        if option in ("-C", "--client") and words:
            host = words.pop(0)
        elif option.startswith("--client="):
            host = option.partition("=")[2]
    if len(words) < 2:
        return []
    verb, kind, rest = words[0], words[1], words[2:]
    if kind in ("vms",):
        kind = "vm"
    if kind == "vm" and verb in ("create", "start", "stop", "delete"):
        return _kcli_vm(verb, rest, host, notes)
    if kind == "plan" and verb == "create":
        return _kcli_plan(rest, host, cwd, notes)
    return []


_KCLI_VALUE_OPTIONS = frozenset(
    {
        "-i",
        "--image",
        "-p",
        "--profile",
        "-P",
        "--param",
        "--paramfile",
        "--pf",
        "-c",
        "--count",
        "-f",
        "--inputfile",
        "-u",
        "--url",
        "--container",
    }
)


def _options(args: list[str], with_value: frozenset[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``(options, positionals)``: ``-x VALUE``, ``--long=VALUE``, flags (value ``""``)."""
    options: dict[str, list[str]] = {}
    positionals: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("--") and "=" in word:
            key, _, value = word.partition("=")
            options.setdefault(key, []).append(value)
        elif word.startswith("-") and len(word) > 1:
            if word in with_value and index + 1 < len(args):
                options.setdefault(word, []).append(args[index + 1])
                index += 1
            else:
                options.setdefault(word, []).append("")
        else:
            positionals.append(word)
        index += 1
    return options, positionals


def _params(options: dict[str, list[str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in options.get("-P", []) + options.get("--param", []):
        key, sep, val = value.partition("=")
        if sep:
            found[key.strip()] = val.strip()
    return found


def _kcli_vm(verb: str, args: list[str], host: str | None, notes: list[str]) -> list[Contract]:
    options, names = _options(args, _KCLI_VALUE_OPTIONS)
    if verb == "create":
        params = _params(options)
        image = (
            options.get("-i")
            or options.get("--image")
            or options.get("-p")
            or options.get("--profile")
            or [""]
        )[0]
        names = names[:1] or ([params["name"]] if "name" in params else [])
        if not names:
            notes.append("kcli create vm without a name (kcli picks a random one): not inferred")
        action = DEFINE if params.get("start", "").lower() in ("false", "no", "0") else CREATE
        detail = f"kcli create vm{f' from {image}' if image else ''}"
    else:
        action = {"start": START, "stop": STOP, "delete": DELETE}[verb]
        detail = f"kcli {verb} vm"
    return [
        Contract(name, action, host, "kcli", CONFIDENCE["command"], [f"{detail}: {action} {name}"])
        for name in names
        if _name_ok(name, f"kcli {verb} vm", notes)
    ]


def _kcli_plan(args: list[str], host: str | None, cwd: str | None, notes: list[str]) -> list[Contract]:
    options, positionals = _options(args, _KCLI_VALUE_OPTIONS)
    plan_file = (options.get("-f") or options.get("--inputfile") or ["kcli_plan.yml"])[0]
    path = _resolve(plan_file, cwd)
    data = _read_yaml_file(path)
    plan = positionals[0] if positionals else "(unnamed plan)"
    if not isinstance(data, dict):
        notes.append(
            f"kcli create plan {redact(plan)}: plan file {redact(str(path or plan_file))} not readable here; "
            "its VMs can only come from the log"
        )
        return []
    parameters: dict[str, Any] = data["parameters"] if isinstance(data.get("parameters"), dict) else {}
    values = {str(k): str(v) for k, v in {**parameters, **_params(options)}.items()}
    found = []
    for key, spec in data.items():
        if key == "parameters" or not isinstance(spec, dict) or spec.get("type", "vm") != "vm":
            continue
        name = substitute(str(key), values)
        if not _name_ok(name, f"kcli plan {plan}", notes):
            continue
        start = values.get("start", str(spec.get("start", True))).lower() not in ("false", "no", "0")
        action = CREATE if start else DEFINE
        evidence = [f"plan file {path} ({plan}) declares vm {name}"]
        found.append(Contract(name, action, host, "kcli", CONFIDENCE["plan"], evidence))
    return found


def _virt_install(command: Command, cwd: str | None, notes: list[str]) -> list[Contract]:
    options, _ = _options(list(command.words[1:]), frozenset({"--name", "-n", "--connect", "-c"}))
    if "--print-xml" in options or "--dry-run" in options:
        return []
    name = (options.get("--name") or options.get("-n") or [""])[0]
    if not _name_ok(name, "virt-install", notes):
        return []
    uri = (options.get("--connect") or options.get("-c") or [""])[0]
    host = (_uri_host(uri) if uri else None) or command.remote_host
    action = DEFINE if "--noreboot" in options else CREATE
    evidence = [f"virt-install --name {name}: {action}"]
    return [Contract(name, action, host, "virt-install", CONFIDENCE["command"], evidence)]


_VIRSH = {
    "start": START,
    "create": CREATE,
    "define": DEFINE,
    "destroy": STOP,
    "shutdown": STOP,
    "undefine": DELETE,
}


def _virsh(command: Command, cwd: str | None, notes: list[str]) -> list[Contract]:
    words = list(command.words[1:])
    host = command.remote_host
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option in ("-c", "--connect") and words:
            host = _uri_host(words.pop(0)) or host
        elif option.startswith("--connect="):
            host = _uri_host(option.partition("=")[2]) or host
    if not words or words[0] not in _VIRSH:
        return []
    verb, args = words[0], words[1:]
    options, positionals = _options(args, frozenset({"--domain", "--file"}))
    target = (options.get("--domain") or options.get("--file") or positionals or [""])[0]
    name = target
    if verb in ("create", "define"):
        name = _domain_xml_name(_resolve(target, cwd)) or ""
        if not name:
            notes.append(f"virsh {verb} {redact(target)}: domain XML not readable here; not inferred")
            return []
    if not _name_ok(name, f"virsh {verb}", notes):
        return []
    action = _VIRSH[verb]
    evidence = [f"virsh {verb} {target}: {action} {name}"]
    return [Contract(name, action, host, "virsh", CONFIDENCE["command"], evidence)]


_PLAYBOOK_VALUE_OPTIONS = frozenset({"-i", "-e", "--extra-vars", "-l", "-u", "-t"})


def _ansible_playbook(command: Command, cwd: str | None, notes: list[str]) -> list[Contract]:
    options, playbooks = _options(list(command.words[1:]), _PLAYBOOK_VALUE_OPTIONS)
    extra = {}
    for value in options.get("-e", []) + options.get("--extra-vars", []):
        for pair in value.split():
            key, sep, val = pair.partition("=")
            if sep:
                extra[key] = val
    found: list[Contract] = []
    for playbook in playbooks:
        path = _resolve(playbook, cwd)
        data = _read_yaml_file(path)
        if data is None:
            if mentions_vm_tool(playbook) or playbook.endswith((".yml", ".yaml")):
                notes.append(f"ansible-playbook {redact(playbook)}: not readable here; not inferred")
            continue
        found.extend(_playbook_contracts(data, f"playbook {path}", notes, extra))
    return found


def _playbook_files(command: Command, cwd: str | None) -> list[Any]:
    """The playbooks an ``ansible-playbook`` command runs, those readable here."""
    _, playbooks = _options(list(command.words[1:]), _PLAYBOOK_VALUE_OPTIONS)
    found = (_read_yaml_file(_resolve(p, cwd)) for p in playbooks)
    return [data for data in found if data is not None]


_READERS: dict[str, Any] = {
    "kcli": _kcli,
    "virt-install": _virt_install,
    "virsh": _virsh,
    "ansible-playbook": _ansible_playbook,
}


# --- Ansible ---------------------------------------------------------------------------------------------

_VIRT_MODULES = ("community.libvirt.virt", "virt")
_ANSIBLE_STATES = {"running": START, "shutdown": STOP, "destroyed": STOP, "paused": STOP}
_ANSIBLE_COMMANDS = {
    "create": CREATE,
    "start": START,
    "define": DEFINE,
    "shutdown": STOP,
    "destroy": STOP,
    "undefine": DELETE,
}


def _looks_like_playbook(text: str) -> bool:
    head = text.lstrip()[:2000]
    return head.startswith(("- hosts:", "---", "- name:")) and ("virt:" in text or "libvirt.virt" in text)


def _playbook_contracts(
    data: Any, origin: str, notes: list[str], extra: Mapping[str, str] | None = None
) -> list[Contract]:
    found: list[Contract] = []
    plays = data if isinstance(data, list) else []
    for play in plays[:100]:
        if not isinstance(play, dict):
            continue
        values = {**_scalars(play.get("vars")), **(extra or {})}
        hosts = play.get("hosts")
        play_host = (
            hosts if isinstance(hosts, str) and hosts not in ("all", "localhost", "127.0.0.1") else None
        )
        for task in _tasks(play):
            contract = _virt_task(task, values, play_host, origin, notes)
            if contract is not None:
                found.append(contract)
    return found


def _scalars(value: Any) -> dict[str, str]:
    return (
        {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float)}
        if isinstance(value, dict)
        else {}
    )


def _tasks(play: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    for key in ("pre_tasks", "tasks", "post_tasks", "block", "rescue", "always", "handlers"):
        items = play.get(key)
        if not isinstance(items, list):
            continue
        for item in items[:500]:
            if not isinstance(item, dict):
                continue
            yield item
            if depth < 3:
                yield from _tasks(item, depth + 1)


def _virt_task(
    task: dict[str, Any], values: Mapping[str, str], play_host: str | None, origin: str, notes: list[str]
) -> Contract | None:
    args = next((task[m] for m in _VIRT_MODULES if m in task), None)
    if not isinstance(args, dict):
        return None
    raw = args.get("name") or args.get("guest")
    if not isinstance(raw, str):
        return None
    name = substitute(raw, {**values, **_scalars(task.get("vars"))})
    action = _ANSIBLE_COMMANDS.get(str(args.get("command", ""))) or _ANSIBLE_STATES.get(
        str(args.get("state", ""))
    )
    if action is None or not _name_ok(name, f"{origin} virt task", notes):
        return None
    uri = args.get("uri")
    host = (_uri_host(uri) if isinstance(uri, str) and "://" in uri else None) or play_host
    label = task.get("name") or "virt"
    evidence = [f"{origin}: task {redact(str(label))[:80]!r} community.libvirt.virt {action} {name}"]
    return Contract(name, action, host, "ansible", CONFIDENCE["playbook"], evidence)


# --- log lines ------------------------------------------------------------------------------------

_LOG_PATTERNS = (
    (r"Deploying vm (\S+) from (?:image|profile|template) (\S+)", CREATE, "kcli"),
    (r"Domain '?([^'\s]+?)'? (created|started|defined|destroyed|undefined)\b", None, "virsh"),
)
_LOG_VERBS = {"created": CREATE, "started": START, "defined": DEFINE, "destroyed": STOP, "undefined": DELETE}


@functools.cache
def _log_regexes() -> tuple[tuple[Any, str | None, str], ...]:
    from qubinode_recovery_provider.diagnosis.linear import compile_linear

    return tuple((compile_linear(regex), action, tool) for regex, action, tool in _LOG_PATTERNS)


def log_contracts(log: str) -> list[Contract]:
    """Contracts named by kcli and virsh output lines (RE2: linear in the log's length)."""
    found: list[Contract] = []
    if not any(k in log for k in ("Deploying vm", "Domain ")):
        return found
    for line in log.splitlines():
        if "Deploying vm" not in line and "Domain " not in line:
            continue
        for regex, action, tool in _log_regexes():
            match = regex.search(line)
            if match is None:
                continue
            name = match.group(1)
            verb = action or _LOG_VERBS[match.group(2)]
            if _name_ok(name, "log", []):
                evidence = [f"log: {redact(line.strip())[:200]}"]
                found.append(Contract(name, verb, None, tool, CONFIDENCE["log"], evidence))
            break
    return found


# --- Ansible's output -----------------------------------------------------------------------------

_ANSIBLE_BANNER = r"(?:TASK|RUNNING HANDLER) \[(.*)\] \*{3,}"
_ANSIBLE_RESULT = (
    r"(?:^|\s)(changed|ok): \[([^\]\s]+)(?: -> ([^\]\s]+))?\](?: => \(item=(.*?)\)(?: => \{|\s*$))?"
)
_ANSIBLE_CREATED = r'"created": "([^"\\]+)"'
_LOCAL = ("localhost", "127.0.0.1", "::1")


@functools.cache
def _ansible_regexes() -> tuple[Any, Any, Any]:
    from qubinode_recovery_provider.diagnosis.linear import compile_linear

    return compile_linear(_ANSIBLE_BANNER), compile_linear(_ANSIBLE_RESULT), compile_linear(_ANSIBLE_CREATED)


@dataclass
class _VirtTask:
    """A ``community.libvirt.virt`` task as the playbook (or the banner's arguments) gives it."""

    name: str  # the ``name``/``guest`` argument, unrendered (``{{ item }}``)
    action: str | None  # None: ``command: define`` from XML (the name comes from the result)
    values: dict[str, str]  # the play's vars


def ansible_output_contracts(log: str, playbooks: Iterable[Any] = ()) -> list[Contract]:
    """Contracts named by Ansible's output of ``community.libvirt.virt`` tasks (default callback).

    A banner ``TASK [NAME]`` is a virt task when a play of ``playbooks`` has a virt task of that name,
    or when the banner shows the module's arguments (``display_args_to_stdout``). Each successful
    ``changed``/``ok`` line of it then names the domain: the task's ``name`` argument, rendered with the
    line's loop item; a ``define`` from XML names it in its ``-v`` result (``"created": "NAME"``).
    ``failed``, ``fatal`` and ``skipping`` lines name nothing. The host is the one in brackets (the
    delegate after ``->``), unless it is the control node itself.
    """
    if "TASK [" not in log and "RUNNING HANDLER [" not in log:
        return []
    known = _virt_tasks_by_name(playbooks)
    banner, result_line, created = _ansible_regexes()
    found: list[Contract] = []
    task: _VirtTask | None = None
    label, host = "", ""
    for line in log.splitlines():
        header = banner.search(line) if "[" in line and "***" in line else None
        if header is not None:
            label, host = header.group(1).strip(), ""
            task = _virt_task_named(label, known)
            continue
        if task is None:
            continue
        match = result_line.search(line) if ": [" in line else None
        if match is not None:
            host = match.group(3) or match.group(2)
            if task.action is not None:
                found.extend(_output_contract(task, match.group(4), host, label, line))
                continue
        made = created.search(line) if '"created"' in line and host else None
        if made is not None and task.action is None and _name_ok(made.group(1), "ansible output", []):
            where = None if host.lower() in _LOCAL else host
            evidence = [f"ansible output: task {redact(label)[:80]!r} defined {made.group(1)} on {host}"]
            found.append(Contract(made.group(1), DEFINE, where, "ansible", CONFIDENCE["playbook"], evidence))
    return found


def _output_contract(task: _VirtTask, item: str | None, host: str, label: str, line: str) -> list[Contract]:
    values = dict(task.values)
    if item is not None:
        values.update(_item_values(item.strip()))
    name = substitute(task.name, values)
    if task.action is None or not _name_ok(name, "ansible output", []):
        return []
    where = None if host.lower() in _LOCAL else host
    evidence = [f"ansible output: task {redact(label)[:80]!r}: {redact(line.strip())[:160]}"]
    return [Contract(name, task.action, where, "ansible", CONFIDENCE["playbook"], evidence)]


def _item_values(item: str) -> dict[str, str]:
    """``item`` (a string label), or ``item.KEY`` of a dict item printed as Python prints a dict."""
    if not item.startswith("{"):
        return {"item": item}
    import ast

    try:
        data = ast.literal_eval(item) if len(item) <= 4096 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return {}
    return {f"item.{k}": str(v) for k, v in data.items() if isinstance(v, str | int | float)}


def _virt_tasks_by_name(playbooks: Iterable[Any]) -> dict[str, _VirtTask]:
    known: dict[str, _VirtTask] = {}
    for data in playbooks:
        for play in (data if isinstance(data, list) else [])[:100]:
            if not isinstance(play, dict):
                continue
            values = _scalars(play.get("vars"))
            for task in _tasks(play):
                parsed = _virt_args(task, values)
                if parsed is not None and isinstance(task.get("name"), str):
                    known.setdefault(task["name"].strip(), parsed)
    return known


def _virt_args(task: dict[str, Any], values: Mapping[str, str]) -> _VirtTask | None:
    args = next((task[m] for m in _VIRT_MODULES if m in task), None)
    if not isinstance(args, dict):
        return None
    name = args.get("name") or args.get("guest")
    command = str(args.get("command", ""))
    if command == "define" and not isinstance(name, str):
        return _VirtTask("", None, dict(values))
    action = _ANSIBLE_COMMANDS.get(command) or _ANSIBLE_STATES.get(str(args.get("state", "")))
    if not isinstance(name, str) or action is None:
        return None
    return _VirtTask(name, action, {**values, **_scalars(task.get("vars"))})


def _virt_task_named(label: str, known: Mapping[str, _VirtTask]) -> _VirtTask | None:
    """The virt task of a banner: by its name (``ROLE : NAME`` for role tasks), else by the module
    arguments the banner shows (``TASK [Start web1 name=web1, state=running]``)."""
    for candidate in (label, label.partition(" : ")[2]):
        if candidate and candidate in known:
            return known[candidate]
    parts = label.split(", ")
    head = parts[0].rsplit(" ", 1)
    words = [head[-1], *parts[1:]] if len(head) == 2 else parts[1:]
    pairs = {key: value for key, sep, value in (w.partition("=") for w in words) if sep}
    return _virt_args({"community.libvirt.virt": pairs}, {}) if "name" in pairs or "guest" in pairs else None


# --- helpers --------------------------------------------------------------------------------------


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``{{ name }}`` replaced by ``values[name]`` (plain identifiers only; anything else stays)."""
    out: list[str] = []
    position = 0
    while True:
        start = text.find("{{", position)
        end = text.find("}}", start + 2) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(text[position:])
            return "".join(out)
        key = text[start + 2 : end].strip()
        out.append(text[position:start])
        out.append(values[key] if key in values else text[start : end + 2])
        position = end + 2


def _uri_host(uri: str) -> str | None:
    """The host of a libvirt URI; None for a local one (``qemu:///system``: where the task ran)."""
    from qubinode_recovery_provider.shadow.inventory import uri_host

    host = uri_host(uri)
    return None if host in ("localhost", "127.0.0.1") else host


def _resolve(name: str, cwd: str | None) -> Path | None:
    if not name or any(c in name for c in "$`*?"):
        return None
    path = Path(name)
    if not path.is_absolute():
        if cwd is None or not cwd.startswith("/"):
            return None
        path = Path(cwd) / path
    return path


def _read_text_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _load_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


def _read_yaml_file(path: Path | None) -> Any:
    text = _read_text_file(path)
    return _load_yaml(text) if text is not None else None


def _domain_xml_name(path: Path | None) -> str | None:
    """The first ``<name>`` of a domain XML file, found by plain text search (no XML parser)."""
    text = _read_text_file(path)
    if text is None or "<domain" not in text:
        return None
    start = text.find("<name>", text.find("<domain"))
    end = text.find("</name>", start)
    if start < 0 or end < 0:
        return None
    name = text[start + 6 : end].strip()
    return name or None


def last_actions(contracts: Iterable[Contract]) -> list[Contract]:
    """One contract per (host, name): the last action wins (a later delete cancels a create)."""
    final: dict[tuple[str | None, str], Contract] = {}
    for contract in contracts:
        key = (contract.host, contract.name)
        earlier = final.pop(key, None)
        if earlier is not None and not contract.negative and not earlier.negative:
            contract = replace(contract, evidence=[*earlier.evidence, *contract.evidence])
        final[key] = contract
    return list(final.values())
