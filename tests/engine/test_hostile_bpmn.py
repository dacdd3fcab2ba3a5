"""Hostile BPMN files are refused at deploy time, with a message that says where and why.

Each file in ``bpmn/hostile/`` (see its README) goes through the pure
:func:`engine.definitions.parse_definition`; big or deeply nested inputs are generated here.
The last tests check the other side: safe scripts run, an unsafe expression that somehow reached
run time still cannot act, and a refused deploy writes nothing.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import AuditEvent, Engine, InvalidBpmn, ProcessDefinition, UnsafeExpression
from engine.database import make_session_factory, make_sql_engine
from engine.definitions import MAX_BPMN_BYTES, parse_definition
from engine.expressions import RestrictedEnvironment
from engine.models import Base

BPMN_DIR = Path(__file__).parent / "bpmn"
HOSTILE = BPMN_DIR / "hostile"


def _content(name: str) -> bytes:
    return (HOSTILE / name).read_bytes()


def _line_of(content: bytes, needle: str) -> int:
    """The 1-based line of the one line of ``content`` that contains ``needle``."""
    lines = [number for number, line in enumerate(content.decode("utf-8").splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} should be on exactly one line, found {lines}"
    return lines[0]


def _refused(content: bytes, filename: str, forms: dict | None = None) -> InvalidBpmn:
    with pytest.raises(InvalidBpmn) as caught:
        parse_definition(content, filename, forms or {}, known_services=set())
    exc = caught.value
    assert exc.problems, "InvalidBpmn must carry at least one problem"
    assert "Traceback" not in str(exc)
    return exc


def _secret_lines() -> list[str]:
    """Lines of /etc/passwd (the XXE target) that must never show up in an error."""
    try:
        text = Path("/etc/passwd").read_text()
    except OSError:
        text = ""
    return [line for line in text.splitlines() if line.strip()] + ["root:x:0:0"]


def _assert_no_leak(exc: InvalidBpmn) -> None:
    shown = str(exc) + "".join(p.message for p in exc.problems)
    for line in _secret_lines():
        assert line not in shown


# ------------------------------------------------------------------------- refused at an element

# (file, element id, text on the element's line, words the message must contain)
AT_ELEMENT = [
    ("not_executable.bpmn", "descriptive_only", '<bpmn:process id="descriptive_only"', ['isExecutable="true"']),
    ("timer_unquoted.bpmn", "Timer_wait", '<bpmn:intermediateCatchEvent id="Timer_wait"',
     ["not quoted", '"PT1H"']),
    ("timer_invalid.bpmn", "Timer_wait", '<bpmn:intermediateCatchEvent id="Timer_wait"',
     ["'P1X'", "ISO 8601"]),
    ("timer_dunder.bpmn", "Timer_wait", '<bpmn:intermediateCatchEvent id="Timer_wait"',
     ["timer expression", "__subclasses__"]),
    ("form_missing.bpmn", "Task_record", '<bpmn:userTask id="Task_record"', ["nowhere.json", "missing"]),
    ("script_import.bpmn", "Script_compute", '<bpmn:scriptTask id="Script_compute"', ["'Import' is not allowed"]),
    ("script_function_def.bpmn", "Script_compute", '<bpmn:scriptTask id="Script_compute"',
     ["'FunctionDef' is not allowed"]),
    ("script_attribute_assignment.bpmn", "Script_compute", '<bpmn:scriptTask id="Script_compute"',
     ["line 2", "only assign values"]),
    ("prescript_import.bpmn", "Task_sneaky", '<bpmn:userTask id="Task_sneaky"', ["'Import' is not allowed"]),
    # A condition lives on a sequence flow, but SpiffWorkflow keeps it on the gateway: reported there.
    ("gateway_import.bpmn", "Gateway_choose", '<bpmn:exclusiveGateway id="Gateway_choose"',
     ["condition", "__import__"]),
    ("gateway_subclasses.bpmn", "Gateway_choose", '<bpmn:exclusiveGateway id="Gateway_choose"',
     ["condition", "__subclasses__"]),
    ("service_unregistered.bpmn", "Service_call", '<bpmn:serviceTask id="Service_call"',
     ["'not_registered'", "not a registered operator"]),
    ("reserved_id.bpmn", "Start", '<bpmn:startEvent id="Start">', ["'Start' is reserved"]),
]


@pytest.mark.parametrize("filename, element_id, line_text, words", AT_ELEMENT,
                         ids=[case[0] for case in AT_ELEMENT])
def test_refused_at_the_element(filename, element_id, line_text, words):
    content = _content(filename)
    exc = _refused(content, filename)
    problem = exc.problems[0]
    assert problem.file == filename
    assert problem.element_id == element_id
    assert problem.line == _line_of(content, line_text)
    assert str(exc).startswith(f"{filename}:{problem.line} [{element_id}]: ")
    for word in words:
        assert word in problem.message


# --------------------------------------------------------------------------- refused as a file

def test_malformed_xml_reports_the_line():
    content = _content("malformed_unclosed.bpmn")
    exc = _refused(content, "malformed_unclosed.bpmn")
    problem = exc.problems[0]
    assert problem.file == "malformed_unclosed.bpmn"
    assert "not well-formed XML" in problem.message
    # libxml2 notices the unclosed <startEvent> when </process> arrives, and names the opening line.
    assert problem.line == _line_of(content, "</bpmn:process>")
    opened = _line_of(content, '<bpmn:startEvent id="StartEvent_1">')
    assert f"startEvent line {opened}" in problem.message


@pytest.mark.parametrize("filename", ["billion_laughs.bpmn", "xxe_file.bpmn"])
def test_doctype_and_entities_are_refused_without_leaking(filename):
    content = _content(filename)
    exc = _refused(content, filename)
    problem = exc.problems[0]
    assert problem.file == filename
    assert problem.line == _line_of(content, "<!DOCTYPE")
    assert "DOCTYPE" in problem.message and "not allowed" in problem.message
    assert "lollol" not in str(exc)
    _assert_no_leak(exc)


def test_doctype_hidden_after_a_long_comment_is_refused_without_leaking():
    """The quick pre-scan reads 64 KB; a DOCTYPE after that is still stopped by the hardened parser."""
    xxe = _content("xxe_file.bpmn")
    declaration, rest = xxe.split(b"\n", 1)
    content = declaration + b"\n<!--" + b" " * 70_000 + b"-->\n" + rest
    exc = _refused(content, "late_doctype.bpmn")
    assert exc.problems[0].file == "late_doctype.bpmn"
    assert "entity" in exc.problems[0].message.lower() or "DOCTYPE" in exc.problems[0].message
    _assert_no_leak(exc)


def test_utf16_file_cannot_smuggle_a_doctype_past_the_byte_scan():
    """In UTF-16 the bytes of '<!DOCTYPE' are interleaved with zeros; the file is refused anyway."""
    text = _content("xxe_file.bpmn").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    exc = _refused(text.encode("utf-16"), "xxe_utf16.bpmn")
    assert exc.problems[0].file == "xxe_utf16.bpmn"
    assert "UTF-8" in exc.problems[0].message
    _assert_no_leak(exc)


def test_non_utf8_file_is_refused_with_the_line():
    content = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    content = content.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    content = content.replace(b'<bpmn:endEvent id="End_1">', b'<bpmn:endEvent id="End_1" name="caf\xe9">')
    exc = _refused(content, "latin1.bpmn")
    assert exc.problems[0].file == "latin1.bpmn"
    assert "not UTF-8" in exc.problems[0].message
    assert exc.problems[0].line == content.split(b"\n").index(b'    <bpmn:endEvent id="End_1" name="caf\xe9">') + 1


def test_oversize_file_is_refused_before_parsing():
    base = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    padding = b"<!--" + b"x" * (MAX_BPMN_BYTES - len(base)) + b"-->\n"
    content = base.replace(b"</bpmn:definitions>", padding + b"</bpmn:definitions>")
    assert len(content) > MAX_BPMN_BYTES
    exc = _refused(content, "huge.bpmn")
    assert exc.problems[0].file == "huge.bpmn"
    assert f"{len(content):,} bytes" in exc.problems[0].message
    assert f"{MAX_BPMN_BYTES:,}" in exc.problems[0].message


def test_file_just_under_the_limit_is_not_refused_for_size():
    base = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    padding = b"<!--" + b"x" * (MAX_BPMN_BYTES - len(base) - len(b"<!---->\n")) + b"-->\n"
    content = base.replace(b"</bpmn:definitions>", padding + b"</bpmn:definitions>")
    assert len(content) == MAX_BPMN_BYTES
    assert parse_definition(content, "big_but_fine.bpmn", {}, known_services=set()).process_id == "safe_script"


def test_root_that_is_not_bpmn_definitions():
    content = _content("root_not_definitions.bpmn")
    exc = _refused(content, "root_not_definitions.bpmn")
    problem = exc.problems[0]
    assert problem.file == "root_not_definitions.bpmn"
    assert problem.line == _line_of(content, "<svg ")
    assert "not a BPMN 2.0 <definitions>" in problem.message and "svg" in problem.message


def test_deeply_nested_xml_is_refused_cleanly():
    base = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    depth = 10_000
    nested = b'<bpmn:extensionElements><x:a xmlns:x="urn:x">' + b"<x:a>" * depth + b"</x:a>" * depth \
        + b"</x:a></bpmn:extensionElements>\n"
    content = base.replace(b"    <bpmn:endEvent", nested + b"    <bpmn:endEvent", 1)
    exc = _refused(content, "deep.bpmn")
    problem = exc.problems[0]
    assert problem.file == "deep.bpmn"
    assert "depth" in problem.message.lower()
    assert problem.line == _line_of(content, "<x:a><x:a>")


def test_missing_form_is_named_even_with_other_forms_present():
    exc = _refused(_content("form_missing.bpmn"), "form_missing.bpmn",
                   {"record.json": (BPMN_DIR / "record.json").read_bytes()})
    assert exc.problems[0].element_id == "Task_record"
    assert "nowhere.json" in exc.problems[0].message


def test_form_that_is_not_a_json_schema():
    exc = _refused(_content("form_bad_schema.bpmn"), "form_bad_schema.bpmn",
                   {"bad_schema.json": (HOSTILE / "bad_schema.json").read_bytes()})
    problem = exc.problems[0]
    assert problem.file == "bad_schema.json"
    assert "not a valid JSON Schema" in problem.message
    assert str(exc).startswith("bad_schema.json: ")


@pytest.mark.parametrize("form, words", [
    (b"{not json", "not a valid JSON Schema"),
    (b"[" * 5_000 + b"]" * 5_000, "nested too deeply"),
    (b'{"not": ' * 900 + b"{}" + b"}" * 900, "nested too deeply"),
], ids=["not-json", "deep-json", "deep-schema"])
def test_broken_form_files_are_refused_cleanly(form, words):
    exc = _refused(_content("form_bad_schema.bpmn"), "form_bad_schema.bpmn", {"bad_schema.json": form})
    assert exc.problems[0].file == "bad_schema.json"
    assert words in exc.problems[0].message


@pytest.mark.parametrize("filename, old, new, element_id", [
    ("gateway_import.bpmn", "__import__('os').system('touch /tmp/pwned')", "not " * 4_000 + "x", "Gateway_choose"),
    ("gateway_import.bpmn", "__import__('os').system('touch /tmp/pwned')", "x" + "+x" * 9_000, "Gateway_choose"),
    ("gateway_import.bpmn", "__import__('os').system('touch /tmp/pwned')", "-" * 15_000 + "x", "Gateway_choose"),
    ("timer_unquoted.bpmn", "PT1H", "-" * 15_000 + "x", "Timer_wait"),
    ("script_import.bpmn", "import os", "x = " + "-" * 15_000 + "1", "Script_compute"),
], ids=["not-chain", "plus-chain", "unary-minus", "timer", "script"])
def test_deeply_nested_expressions_are_refused_not_crashed(filename, old, new, element_id):
    content = _content(filename)
    exc = _refused(content.replace(old.encode(), new.encode()), filename)
    assert exc.problems[0].element_id == element_id
    assert exc.problems[0].line is not None
    assert "nested too deeply" in exc.problems[0].message


# --------------------------------------------------------------------------------- at run time

@pytest.fixture
def session():
    sql_engine = make_sql_engine("sqlite://")
    Base.metadata.create_all(sql_engine)
    with make_session_factory(sql_engine)() as db:
        yield db
    sql_engine.dispose()


def test_safe_script_deploys_and_runs(session):
    engine = Engine()
    content = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    parsed = parse_definition(content, "safe_script.bpmn", {}, known_services=set())
    assert parsed.process_id == "safe_script"
    result = engine.deploy(session, content, "safe_script.bpmn", actor="tester")
    assert result.created
    instance = engine.start(session, "safe_script", data={"count": 41})
    session.commit()
    assert instance.status == "completed"
    assert instance.data["total"] == 42
    assert instance.data["label"] == "共 42 人"


@pytest.mark.parametrize("make_expression", [
    lambda marker: f"__import__('os').system('touch {marker}')",
    lambda marker: f"open('{marker}', 'w').write('pwned')",
    lambda marker: "().__class__.__base__.__subclasses__()",
    lambda marker: f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]"
                   f"(['touch', '{marker}'])",
], ids=["import", "open", "subclasses", "popen"])
def test_unsafe_expression_cannot_act_even_at_run_time(tmp_path, make_expression):
    marker = tmp_path / "pwned"
    environment = RestrictedEnvironment()
    with pytest.raises(UnsafeExpression):
        environment.evaluate(make_expression(marker), {"approved": True})
    assert not marker.exists()


def test_unsafe_script_cannot_act_even_at_run_time(tmp_path):
    marker = tmp_path / "pwned"
    environment = RestrictedEnvironment()
    data = {"count": 1}
    for script in (f"import os\nos.system('touch {marker}')",
                   f"done = __import__('os').system('touch {marker}')"):
        with pytest.raises(UnsafeExpression):
            environment.execute(script, data)
    assert not marker.exists()
    assert data == {"count": 1}


def _counts(session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(ProcessDefinition)),
            session.scalar(select(func.count()).select_from(AuditEvent)))


@pytest.mark.parametrize("filename", ["gateway_import.bpmn", "xxe_file.bpmn", "service_unregistered.bpmn"])
def test_failed_deploy_writes_nothing(session, filename):
    engine = Engine()
    with pytest.raises(InvalidBpmn) as caught:
        engine.deploy(session, _content(filename), filename, actor="organiser")
    assert caught.value.problems[0].file == filename
    assert _counts(session) == (0, 0)
    session.commit()
    assert _counts(session) == (0, 0)


def test_failed_new_version_leaves_the_deployed_one_alone(session):
    """A valid deploy, then a hostile file with the same process id: still one version, one event."""
    engine = Engine()
    good = (BPMN_DIR / "safe_script.bpmn").read_bytes()
    engine.deploy(session, good, "safe_script.bpmn")
    session.commit()
    bad = good.replace(b"total = count + 1", b"import os")
    with pytest.raises(InvalidBpmn) as caught:
        engine.deploy(session, bad, "safe_script.bpmn")
    assert caught.value.problems[0].element_id == "Script_compute"
    session.commit()
    assert _counts(session) == (1, 1)
    assert engine.latest_definition(session, "safe_script").version == 1
