"""Inferred VM contracts read from real kcli, virt-install, virsh and Ansible command lines and output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qubinode_recovery_provider.shadow.commands import MAX_TEXT_CHARS, split_commands
from qubinode_recovery_provider.shadow.contracts import (
    ansible_output_contracts,
    infer_task,
    last_actions,
    log_contracts,
    substitute,
)
from qubinode_recovery_provider.shadow.inference import infer_run
from qubinode_recovery_provider.shadow.records import RunRecord, TaskRecord


def _contracts(text: str, log: str | None = None, cwd: str | None = None) -> list[tuple[object, ...]]:
    found = infer_task("t", {"rendered bash_command": text}, log, cwd=cwd).contracts
    return [(c.name, c.action, c.host, c.tool) for c in found]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # kcli, as Qubinode Navigator DAGs call it
        (
            "kcli create vm freeipa -i centos9stream -P memory=4096 -P numcpus=2 -P disks=[50]",
            [("freeipa", "create", None, "kcli")],
        ),
        (
            "sudo -E kcli create vm -p rhel9 -P nets=[qubinet] -P reservedns=yes idm 2>&1 | tee /tmp/idm.log",
            [("idm", "create", None, "kcli")],
        ),
        ("kcli -C kvm2 create vm -i fedora39 -P start=false golden", [("golden", "define", "kvm2", "kcli")]),
        ("kcli delete vm -y web1 web2", [("web1", "delete", None, "kcli"), ("web2", "delete", None, "kcli")]),
        (
            "kcli stop vm db1 && kcli start vm db1",
            [("db1", "stop", None, "kcli"), ("db1", "start", None, "kcli")],
        ),
        ("export VM=idm; kcli create vm $VM -i centos9stream", []),
        ('kcli start vm "$(basename lab/cache1)" 2>&1 || true', []),
        ("echo 'kcli create vm ghost -i x'", []),
        ("kcli list vm", []),
        # virt-install and virsh
        (
            "virt-install --name=rhel9-vm --memory 4096 --vcpus 2 --disk size=20 --cdrom rhel9.iso "
            "--os-variant rhel9.0 --noautoconsole",
            [("rhel9-vm", "create", None, "virt-install")],
        ),
        (
            "virt-install --connect qemu+ssh://root@kvm3.lab/system -n bastion --import --disk b.qcow2 "
            "--noreboot",
            [("bastion", "define", "kvm3.lab", "virt-install")],
        ),
        ("virt-install --name x --print-xml > x.xml", []),
        (
            "virsh -c qemu:///system start idm; virsh --connect qemu+ssh://kvm1/system destroy old",
            [("idm", "start", None, "virsh"), ("old", "stop", "kvm1", "virsh")],
        ),
        ("virsh undefine --remove-all-storage --domain legacy", [("legacy", "delete", None, "virsh")]),
        # wrappers: ssh, bash -c, timeout, env
        (
            "ssh -o StrictHostKeyChecking=no root@kvm4 'kcli create vm -i centos9stream ipa'",
            [("ipa", "create", "kvm4", "kcli")],
        ),
        ('timeout 900 bash -c "kcli create vm web9 -i centos9stream"', [("web9", "create", None, "kcli")]),
        (
            "env LIBVIRT_DEFAULT_URI=qemu:///system /usr/bin/virsh start cache1",
            [("cache1", "start", None, "virsh")],
        ),
        ("kcli create vm \\\n  -i centos9stream \\\n  multiline1", [("multiline1", "create", None, "kcli")]),
        ("kcli create vm 'unbalanced", []),
    ],
)
def test_command_lines(command: str, expected: list[tuple[object, ...]]) -> None:
    assert _contracts(command) == expected


def test_the_log_confirms_and_adds() -> None:
    log = "\n".join(
        [
            "[2026-12-03, 10:00:01 UTC] {subprocess.py:93} INFO - "
            "Deploying vm idm from image centos9stream...",
            "INFO - idm created on local",
            "INFO - Domain 'extra1' created from /tmp/extra1.xml",
        ]
    )
    found = infer_task("t", {"rendered bash_command": "kcli create vm idm -i centos9stream"}, log).contracts
    idm = next(c for c in found if c.name == "idm")
    assert idm.confidence == pytest.approx(0.9)
    assert any(line.startswith("log: ") and "Deploying vm idm" in line for line in idm.evidence)
    extra = next(c for c in found if c.name == "extra1")
    assert (extra.action, extra.tool, extra.confidence) == ("create", "virsh", 0.6)


def test_log_patterns_are_linear_and_quiet_on_other_text() -> None:
    assert log_contracts("x" * 200_000 + "\nDomain " + "a" * 100_000) == []
    assert [c.name for c in log_contracts("Domain 'web1' started\n")] == ["web1"]


def test_plan_file_with_parameters_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "lab.yml").write_text(
        "parameters:\n  prefix: lab\n  image: centos9stream\n"
        "'{{ prefix }}-idm':\n  image: '{{ image }}'\n  memory: 4096\n"
        "'{{ prefix }}-bastion':\n  image: '{{ image }}'\n  start: false\n"
        "labnet:\n  type: network\n  cidr: 192.168.10.0/24\n"
    )
    found = _contracts(f"cd {tmp_path} && kcli create plan -f lab.yml -P prefix=prod myplan")
    assert found == [("prod-idm", "create", None, "kcli"), ("prod-bastion", "define", None, "kcli")]


def test_unreadable_plan_is_a_note_and_its_log_names_the_vms() -> None:
    inference = infer_task(
        "t",
        {"rendered bash_command": "kcli create plan -f /nonexistent/plan.yml lab"},
        "Deploying vm lab-ctl from image rhel9\nDeploying vm lab-wrk from image rhel9",
    )
    assert [c.name for c in inference.contracts] == ["lab-ctl", "lab-wrk"]
    assert any("not readable here" in note for note in inference.notes)


def test_virsh_define_reads_the_domain_name_from_the_xml(tmp_path: Path) -> None:
    (tmp_path / "vm.xml").write_text("<domain type='kvm'><name>golden-img</name><memory>1</memory></domain>")
    assert _contracts(f"virsh define {tmp_path}/vm.xml && virsh start golden-img") == [
        ("golden-img", "define", None, "virsh"),
        ("golden-img", "start", None, "virsh"),
    ]


def test_ansible_playbook_with_virt_tasks(tmp_path: Path) -> None:
    (tmp_path / "vms.yml").write_text(
        "- hosts: kvm5\n  vars:\n    vm: satellite\n  tasks:\n"
        "    - name: define\n      community.libvirt.virt:\n        command: define\n        xml: x\n"
        "        name: '{{ vm }}'\n"
        "    - name: start it\n      community.libvirt.virt:\n"
        "        name: '{{ vm }}'\n        state: running\n"
        "    - block:\n        - virt:\n            name: old-sat\n            command: undefine\n"
        "    - community.libvirt.virt:\n        name: '{{ unknown_var }}'\n        state: running\n"
    )
    inference = infer_task("t", {"rendered bash_command": f"ansible-playbook -i inv {tmp_path}/vms.yml"})
    assert [(c.name, c.action, c.host, c.tool) for c in inference.contracts] == [
        ("satellite", "define", "kvm5", "ansible"),
        ("satellite", "start", "kvm5", "ansible"),
        ("old-sat", "delete", "kvm5", "ansible"),
    ]
    assert any("not a literal name" in note for note in inference.notes)


def test_a_rendered_playbook_text_is_read_as_yaml() -> None:
    playbook = (
        "---\n- hosts: localhost\n  tasks:\n"
        "    - community.libvirt.virt:\n        name: vm7\n        state: running\n"
    )
    assert _contracts(playbook) == [("vm7", "start", None, "ansible")]


LAB_PLAYBOOK = """\
- name: Build the lab
  hosts: kvm1
  gather_facts: false
  vars:
    lab: qlab
  tasks:
    - name: Define the VMs
      community.libvirt.virt:
        command: define
        xml: "{{ lookup('template', 'vm.xml.j2') }}"
      loop: "{{ vms }}"
    - name: Start the VMs
      community.libvirt.virt:
        name: "{{ item.name }}"
        state: running
      loop:
        - {name: idm, memory: 4096}
        - {name: gitlab, memory: 8192}
    - name: Stop the old proxy
      community.libvirt.virt:
        name: "{{ lab }}-proxy"
        state: shutdown
    - name: Check the disks
      ansible.builtin.command: df -h
"""

# ansible-playbook -v, default callback (ansible-core 2.15), as a BashOperator logs it: the banners
# padded with stars, "changed"/"ok" per host and loop item, the -v result after "=>", the recap.
LAB_OUTPUT = """\
[2026-11-28T06:55:01.100+0000] {subprocess.py:93} INFO - Using /etc/ansible/ansible.cfg as config file
[2026-11-28T06:55:01.101+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:01.102+0000] {subprocess.py:93} INFO - PLAY [Build the lab] \
***********************************************************
[2026-11-28T06:55:01.103+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:01.104+0000] {subprocess.py:93} INFO - TASK [Define the VMs] \
**********************************************************
[2026-11-28T06:55:03.201+0000] {subprocess.py:93} INFO - changed: [kvm1] => (item=idm) => \
{"ansible_loop_var": "item", "changed": true, "created": "idm", "item": "idm"}
[2026-11-28T06:55:04.388+0000] {subprocess.py:93} INFO - changed: [kvm1] => (item=gitlab) => \
{"ansible_loop_var": "item", "changed": true, "created": "gitlab", "item": "gitlab"}
[2026-11-28T06:55:04.389+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:04.390+0000] {subprocess.py:93} INFO - TASK [Start the VMs] \
***********************************************************
[2026-11-28T06:55:06.512+0000] {subprocess.py:93} INFO - changed: [kvm1] => \
(item={'name': 'idm', 'memory': 4096}) => {"ansible_loop_var": "item", "changed": true, \
"item": {"memory": 4096, "name": "idm"}, "msg": 0}
[2026-11-28T06:55:07.020+0000] {subprocess.py:93} INFO - ok: [kvm1] => \
(item={'name': 'gitlab', 'memory': 8192}) => {"ansible_loop_var": "item", "changed": false, \
"item": {"memory": 8192, "name": "gitlab"}}
[2026-11-28T06:55:07.021+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:07.022+0000] {subprocess.py:93} INFO - TASK [Stop the old proxy] \
******************************************************
[2026-11-28T06:55:08.340+0000] {subprocess.py:93} INFO - changed: [kvm1] => \
{"changed": true, "msg": 0}
[2026-11-28T06:55:08.341+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:08.342+0000] {subprocess.py:93} INFO - TASK [Check the disks] \
********************************************************
[2026-11-28T06:55:08.901+0000] {subprocess.py:93} INFO - changed: [kvm1] => {"changed": true, \
"cmd": ["df", "-h"], "rc": 0}
[2026-11-28T06:55:08.902+0000] {subprocess.py:93} INFO -
[2026-11-28T06:55:08.903+0000] {subprocess.py:93} INFO - PLAY RECAP \
*********************************************************************
[2026-11-28T06:55:08.904+0000] {subprocess.py:93} INFO - kvm1                       : ok=4    \
changed=4    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
""".replace("\\\n", "")


def test_ansible_output_names_the_domains_of_virt_tasks(tmp_path: Path) -> None:
    """Loop items and the define result name the domains; other tasks, ``ok`` lines and the recap
    are read for what they are."""
    (tmp_path / "lab.yml").write_text(LAB_PLAYBOOK)
    found = ansible_output_contracts(LAB_OUTPUT, [yaml.safe_load(LAB_PLAYBOOK)])
    assert [(c.name, c.action, c.host, c.expected_state) for c in found] == [
        ("idm", "define", "kvm1", "defined"),
        ("gitlab", "define", "kvm1", "defined"),
        ("idm", "start", "kvm1", "running"),
        ("gitlab", "start", "kvm1", "running"),  # ok: already running, still the intended state
        ("qlab-proxy", "stop", "kvm1", "stopped"),
    ]
    assert found[2].evidence[0].startswith("ansible output: task 'Start the VMs': ")

    inference = infer_task(
        "build_lab",
        {"rendered bash_command": f"ansible-playbook -v -i inventory {tmp_path}/lab.yml"},
        LAB_OUTPUT,
    )
    final = {(c.name, c.host): c for c in last_actions(inference.contracts)}
    assert set(final) == {("idm", "kvm1"), ("gitlab", "kvm1"), ("qlab-proxy", "kvm1")}
    assert final[("idm", "kvm1")].action == "start"  # defined, then started: the last action wins
    assert final[("idm", "kvm1")].confidence == pytest.approx(0.7)  # only the output could name it
    assert final[("qlab-proxy", "kvm1")].action == "stop"
    assert final[("qlab-proxy", "kvm1")].confidence == pytest.approx(0.8)  # playbook, confirmed by output
    assert any("not a literal name" in note for note in inference.notes)  # {{ item.name }} unrendered


def test_ansible_output_without_the_playbook() -> None:
    """Without the playbook, only banners that show the module's arguments (``display_args_to_stdout``)
    are virt tasks; a role task's banner is ``ROLE : NAME``."""
    output = (
        "TASK [Start web1 name=web1, state=running] *************************************\n"
        "changed: [localhost -> kvm9]\n"
        "TASK [Start the VMs] *************************************************************\n"
        "changed: [kvm1] => (item=idm)\n"
    )
    assert [(c.name, c.action, c.host) for c in ansible_output_contracts(output)] == [
        ("web1", "start", "kvm9")  # delegated: the module ran on kvm9
    ]
    role = "- hosts: kvm3\n  tasks:\n    - name: boot\n      virt: {name: '{{ item }}', state: running}\n"
    output = (
        "TASK [lab_vms : boot] ******\n"
        "changed: [kvm3] => (item=db1)\n"
        'failed: [kvm3] (item=db2) => {"changed": false, "msg": "virtual machine db2 not found"}\n'
        "skipping: [kvm3] => (item=db3) \n"
    )
    found = ansible_output_contracts(output, [yaml.safe_load(role)])
    assert [(c.name, c.action, c.host) for c in found] == [("db1", "start", "kvm3")]


def test_the_last_action_wins() -> None:
    found = infer_task(
        "t", {"rendered bash_command": "kcli create vm a -i x; kcli delete vm -y a; kcli create vm b -i x"}
    )
    final = last_actions(found.contracts)
    assert [(c.name, c.action) for c in final] == [("a", "delete"), ("b", "create")]


def test_run_level_inference_orders_tasks_and_resolves_hosts() -> None:
    run = RunRecord(
        "d",
        "r",
        "success",
        tasks=[
            TaskRecord(
                "remove",
                state="success",
                end_date="2026-01-01T00:02:00Z",
                rendered={"bash_command": "kcli delete vm -y tmp1"},
            ),
            TaskRecord(
                "make",
                state="success",
                end_date="2026-01-01T00:01:00Z",
                rendered={"bash_command": "kcli create vm tmp1 -i x && kcli create vm keep1 -i x"},
            ),
            TaskRecord("failed", state="failed", rendered={"bash_command": "kcli create vm never -i x"}),
            TaskRecord(
                "ssh",
                state="success",
                end_date="2026-01-01T00:03:00Z",
                rendered={"command": "kcli create vm far -i x", "remote_host": "kvm9"},
            ),
        ],
    )
    inference = infer_run(run, None, "lab")
    assert {(d.uri, d.expected_state, d.task_id) for d in inference.declared} == {
        ("libvirt://lab/tmp1", "absent", "remove"),
        ("libvirt://lab/keep1", "running", "make"),
        ("libvirt://kvm9/far", "running", "ssh"),
    }
    assert all(d.source == "inferred" and d.confidence for d in inference.declared)


@pytest.mark.parametrize("value", [False, "false", {"value": False, "schema": {"type": "boolean"}}])
def test_opt_out_param(value: object) -> None:
    run = RunRecord(
        "d",
        "r",
        "success",
        dag_params={"qubinode_infer_vms": value},
        tasks=[TaskRecord("t", state="success", rendered={"bash_command": "kcli create vm a -i x"})],
    )
    inference = infer_run(run, None, "lab")
    assert inference.declared == []
    assert inference.lines() == ["inference off: DAG params: qubinode_infer_vms is false"]


def test_bounded_input() -> None:
    text = "kcli create vm a -i x;" * (MAX_TEXT_CHARS // 10)
    assert len(list(split_commands(text))) <= 500
    assert substitute("{{ a }}-{{ b }}-{{", {"a": "1"}) == "1-{{ b }}-{{"


def test_evidence_and_explain_leak_no_canary() -> None:
    from support.canaries import all_canaries, assert_no_canary, canary_items

    for text, _ in canary_items():
        quoted = text.replace("'", "")
        command = f"kcli create vm idm -i centos9stream -P note='\n{quoted}'"
        log = f"Deploying vm idm from image centos9stream\n{text}\nDomain 'idm' created\n{text}"
        inference = infer_task("t", {"rendered bash_command": command}, log)
        assert [c.name for c in inference.contracts] == ["idm"]
        run = RunRecord("d", "r", "success", tasks=[TaskRecord("t", state="success")])
        lines = [*inference.notes, *(line for c in inference.contracts for line in c.evidence)]
        assert_no_canary("\n".join(lines), all_canaries())
        assert infer_run(run, None, "lab").declared == []


def test_runs_reading_the_same_commands_share_one_inference_but_not_its_notes(tmp_path: Path) -> None:
    """The scan's cache: a second run with the same commands gets the same contracts (a copy its caller
    may add notes to); a run whose command reads a file is read again (the file may have changed)."""

    def run(run_id: str, command: str) -> RunRecord:
        task = TaskRecord("make", state="success", rendered={"bash_command": command})
        return RunRecord("d", run_id, "success", tasks=[task])

    cache: dict[object, object] = {}
    first = infer_run(run("r1", "kcli create vm a -i x && kcli delete vm a -y"), None, "lab", cache)  # type: ignore[arg-type]
    first.notes.append("added by the caller")
    second = infer_run(run("r2", "kcli create vm a -i x && kcli delete vm a -y"), None, "lab", cache)  # type: ignore[arg-type]
    uncached = infer_run(run("r3", "kcli create vm a -i x && kcli delete vm a -y"), None, "lab")
    assert len(cache) == 1
    assert second.declared == uncached.declared
    assert second.notes == uncached.notes
    assert second.notes  # the deletion is noted
    assert "added by the caller" not in second.notes

    plan = tmp_path / "lab.yml"
    plan.write_text("vm1:\n  image: centos9stream\n")
    command = f"kcli create plan -f {plan} lab"
    before = infer_run(run("r4", command), None, "lab", cache)  # type: ignore[arg-type]
    plan.write_text("vm2:\n  image: centos9stream\n")
    after = infer_run(run("r5", command), None, "lab", cache)  # type: ignore[arg-type]
    assert [d.name for d in before.declared] == ["vm1"]
    assert [d.name for d in after.declared] == ["vm2"]
    assert len(cache) == 1


def test_tasks_with_no_text_of_their_own_take_their_lineage_source_code() -> None:
    """Successful tasks without rendered fields or a log get an entry only when their lineage carries a
    ``sourceCode`` naming a VM tool (by their key, else the unmapped key); the later of two task
    instances with one key wins; failed tasks never count."""
    from qubinode_recovery_provider.shadow.inference import _task_texts
    from qubinode_recovery_provider.shadow.lineage import RunLineage, TaskLineage

    run = RunRecord(
        "d",
        "r",
        "success",
        tasks=[
            TaskRecord("a", state="success", end_date="2026-01-01T00:03:00Z"),
            TaskRecord("m", map_index=2, state="success", end_date="2026-01-01T00:01:00Z"),
            TaskRecord("b", state="success", rendered={"bash_command": "kcli create vm b1 -i x"}),
            TaskRecord("b", state="success", end_date="2026-01-01T00:04:00Z"),
            TaskRecord("c", state="failed", end_date="2026-01-01T00:00:00Z"),
            TaskRecord("u", state="success", end_date="2026-01-01T00:05:00Z"),
        ],
    )
    lineage = RunLineage()
    for key in [("a", -1), ("m", 2), ("m", 5), ("c", -1), ("u", 3)]:
        lineage.tasks[key] = TaskLineage(source_code=f"kcli create vm {key[0]}{key[1]} -i x")
    lineage.tasks[("b", -1)] = TaskLineage()
    code = "OpenLineage sourceCode"
    assert _task_texts(run, lineage) == [
        ("m", {code: "kcli create vm m2 -i x"}, None, {}),
        ("a", {code: "kcli create vm a-1 -i x"}, None, {}),
        ("u", {code: "kcli create vm u3 -i x"}, None, {}),
    ]
    assert _task_texts(run, None) == []


def test_prepared_commands_give_the_same_inference_from_the_caches() -> None:
    """``prepare_runs`` parses each distinct rendered text once, ahead of ``infer_run``, which then reads
    it from the caches: same contracts; opted-out runs, failed tasks and texts past the limit are left."""
    from qubinode_recovery_provider.shadow import contracts
    from qubinode_recovery_provider.shadow.inference import OPT_OUT_TAG, prepare_runs

    def run(run_id: str, command: str, state: str = "success", tags: tuple[str, ...] = ()) -> RunRecord:
        task = TaskRecord("make", state=state, rendered={"bash_command": command, "remote_host": "kvm7"})
        return RunRecord("d", run_id, "success", tasks=[task], dag_tags=tags)

    runs = [
        run("r1", "kcli create vm prep-a1 -i x"),
        run("r2", "kcli create vm prep-a1 -i x"),  # the same text: parsed once
        run("r3", "kcli create vm prep-b1 -i x && kcli delete vm -y prep-b1"),
        run("r4", "kcli create vm prep-c1 -i x", state="failed"),
        run("r5", "kcli create vm prep-d1 -i x", tags=(OPT_OUT_TAG,)),
    ]
    expected = [infer_run(r, None, "lab").declared for r in runs]
    contracts._commands.cache_clear()
    assert prepare_runs(runs) == 2
    assert contracts._commands.cache_info().currsize == 2
    assert prepare_runs(runs[2:], limit=0) == 0
    before = contracts._commands.cache_info().hits
    assert [infer_run(r, None, "lab").declared for r in runs] == expected
    assert contracts._commands.cache_info().hits - before == 3  # r1, r2, r3 read from the cache
    assert {d.host for d in expected[0]} == {"kvm7"}
