"""Whatever bytes come in, the statement parser ends normally or with StatementError, never anything else."""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from platforma.payments.statements import StatementError, iter_statement

DATA = Path(__file__).resolve().parents[1] / "data" / "statements"

MT940_SAMPLES = [(DATA / "mt940" / name).read_bytes() for name in (
    "pekao_caret_sample1.sta", "pekao_caret_sample3.sta", "wolph_mt940__mt940_tests_mBank_mt940.sta",
    "ksdev-pl_mbank-mt940-parser__tests_MT940_multiple_accounts.txt")]
CAMT_SAMPLES = [(DATA / "camt" / name).read_bytes() for name in (
    "genkgo_camt__test_data_camt053.v2.multi.statement.xml", "genkgo_camt__test_data_camt053.v8.xml",
    "genkgo_camt__test_data_camt054.v8.xml", "genkgo_camt__test_data_camt054.v2.xml")]
# lines and fragments that steer mutations into the parsers' corners
MT940_PIECES = [b":61:2501010101C1,00NTRFNONREF//X", b":86:020~00152~20Tytu\xb3~32Jan", b":62F:C250101PLN0,00",
                b":20:B", b":60F:D250101PLN1,00", b":86:911 X; Z RACH.: 1; OD: A; TYT.: B", b"\xff\xfe", b"-",
                b":61:2502300230RD1,00N", b"^20", b"~31", b":28C:1", b"{4:", b"\x01", b"\xef\xbb\xbf"]
CAMT_PIECES = [b"<Ntry>", b"</Ntry>", b"<TxDtls>", b"</TxDtls>", b'<Amt Ccy="EUR">1.00</Amt>', b"<!DOCTYPE x>",
               b"<CdtDbtInd>CRDT</CdtDbtInd>", b"&amp;", b"&x;", b"<![CDATA[", b"]]>", b"<Stmt>", b"</Stmt>",
               b"<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp></Bal>", b"<?pi x?>", b"<!-- c -->", b"\x00"]

#: examples per mutation test (about 15 s in all); set STATEMENT_FUZZ_EXAMPLES higher for a long hunt
EXAMPLES = int(os.environ.get("STATEMENT_FUZZ_EXAMPLES", 600))
MUTATIONS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def consume(data: bytes) -> None:
    try:
        for _ in iter_statement(data):
            pass
    except StatementError as exc:
        # a specific refusal, not the safety net that turns an unforeseen exception into StatementError
        assert str(exc)
        assert exc.__cause__ is None or isinstance(exc.__cause__, (UnicodeError, etree.LxmlError)), repr(exc.__cause__)


@st.composite
def mutated(draw, samples: list[bytes], pieces: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "piece", "duplicate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(max_size=40))
        elif kind == "delete":
            del data[position:position + draw(st.integers(1, 200))]
        elif kind == "piece":
            # at a line start where there is one, so that new fields and elements appear
            line_start = data.rfind(b"\n", 0, position) + 1
            data[line_start:line_start] = draw(st.sampled_from(pieces)) + b"\n"
        elif kind == "duplicate":
            end = min(len(data), position + draw(st.integers(1, 400)))
            data[end:end] = data[position:end]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(data):
    consume(data)


@FUZZ
@given(st.sampled_from([b":20:", b"<", b"\xef\xbb\xbf<", b"\xef\xbb\xbf:", b"{1:"]), st.binary(max_size=2000))
def test_arbitrary_bytes_after_a_format_signature(prefix, data):
    consume(prefix + data)


@MUTATIONS
@given(mutated(MT940_SAMPLES, MT940_PIECES))
def test_mutated_mt940_samples(data):
    consume(data)


@MUTATIONS
@given(mutated(CAMT_SAMPLES, CAMT_PIECES))
def test_mutated_camt_samples(data):
    consume(data)


@FUZZ
@given(st.lists(st.sampled_from(MT940_PIECES + [b":25:/PL61109010140000071219812874", b"\xb3\xea", b"x" * 70]),
                max_size=40))
def test_mt940_made_of_fields(lines):
    consume(b"\r\n".join(lines))
