"""A bank statement for the demo (and for tests): a camt.053.001.02 document the way Polish banks send
one for a gmina's collection account, each credit naming the individual account it was paid to
(TxDtls/RltdPties/CdtrAcct) or only a title."""
from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

#: (amount "12.34", credit, title, individual account credited (NRB) or "", counterparty name)
Line = tuple[str, bool, str, str, str]

PAYER_ACCOUNT = "61109010140000071219812874"


def camt053(entries: list[Line], *, account: str, opening: str = "1000.00", closing: str | None = None,
            statement_id: str = "WYC-2026-0042", day: str = "2026-11-20") -> bytes:
    total = Decimal(opening) + sum((Decimal(a) if c else -Decimal(a)) for a, c, *_ in entries)
    closing = closing if closing is not None else f"{total:.2f}"
    rows = []
    for n, (amount, credit, title, credited, who) in enumerate(entries, 1):
        who, title = escape(who), escape(title)
        if credit:
            party = (f"<Dbtr><Nm>{who}</Nm></Dbtr><DbtrAcct><Id><IBAN>PL{PAYER_ACCOUNT}</IBAN></Id></DbtrAcct>"
                     + (f"<CdtrAcct><Id><IBAN>PL{credited}</IBAN></Id></CdtrAcct>" if credited else ""))
        else:  # a debit: `credited` is the payee's account
            party = f"<Cdtr><Nm>{who}</Nm></Cdtr>" + (f"<CdtrAcct><Id><IBAN>PL{credited}</IBAN></Id></CdtrAcct>" if credited else "")
        rows.append(
            f'<Ntry><Amt Ccy="PLN">{amount}</Amt><CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>REF{n:06d}</AcctSvcrRef>"
            f"<BkTxCd><Prtry><Cd>TRF</Cd></Prtry></BkTxCd><NtryDtls><TxDtls><Refs><AcctSvcrRef>REF{n:06d}</AcctSvcrRef></Refs>"
            f'<AmtDtls><TxAmt><Amt Ccy="PLN">{amount}</Amt></TxAmt></AmtDtls><RltdPties>{party}</RltdPties>'
            f"<RmtInf><Ustrd>{title}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{escape(statement_id)}</MsgId><CreDtTm>{day}T18:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{escape(statement_id)}</Id><ElctrncSeqNb>42</ElctrncSeqNb><CreDtTm>{day}T18:00:00</CreDtTm>"
        f'<Acct><Id><IBAN>PL{account}</IBAN></Id><Ccy>PLN</Ccy></Acct>'
        f'<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="PLN">{opening}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>'
        f'<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="PLN">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>'
        + "".join(rows) + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()
