"""China customs declarations, as exported from the China International Trade Single Window, into
``customs``.

The Single Window (中国国际贸易单一窗口, *货物申报 > 报关单查询*) lists a firm's import and
export declarations (报关单) and exports them as a table with one row per declaration item
(商品项): the declaration's customs number (报关单号 / 海关编号), the item number (项号),
the declaration date (申报日期), the I/E flag (进出口标志), the supervision code (监管方式,
also called 贸易方式), the 10-digit commodity code (商品编号), the quantities (成交数量 and
法定第一数量), the total price (总价) and its currency (币制), the countries (原产国(地区),
最终目的国(地区), 运抵国(地区)), the declaration's status (申报状态 / 通关状态) and, in
the query export, when the row was last modified (修改时间). The Chinese headers are the
canonical column names; English headers (``Declaration No.``, ``Item No.``, ``Declaration
Date``, ``Trade Mode``, ``Commodity Code``, ``Destination Country``, ``Total Price``,
``Currency``, ``Quantity``, ``I/E Flag``, ``Origin Country``, ``Status``, ``Modification
Time``...) and the other Chinese spellings (海关编号, 贸易方式, 商品编码, 通关状态, 更新时间,
full-width brackets ``（地区）``) are read as the same columns.

Each declaration item is one ``customs`` record, ``cn-<declaration number>-<item number>``.
The declaration number is the customs' own 18-character number: the 4-digit code of the
customs office that accepted it, the year, the I/E flag (``0`` export, ``1`` import; ``E``/``I``
on a consolidated declaration list) and a 9-digit serial. The I/E flag is read from it, and
the 进出口标志 column, when given, must agree.

An amended declaration (改单) comes back with the same number and item and a later
修改时间: the latest version of an item is its record, the earlier ones are skipped with the
line of the version that superseded them, and a later export holding only the amended version
gives the same record ID with the amended content.

The quantity is the first legal quantity (法定第一数量, in the unit the tariff sets for the
commodity code: the customs' statistical unit, which the contract asks for), the transaction
quantity (成交数量) only when a row has none. The declaration date is the customs' date in
Beijing, kept as that calendar date. An export declaration with no origin is taken to be of
Chinese origin (CN), an import with no destination to be bound for China. The status maps
onto the contract's outcomes (放行/结关 cleared, 查验 inspected, 挂起/扣留 held, 退单
rejected); a declaration still in clearance (申报中, 海关入库成功, 审结...) has no outcome yet
and is rejected until a later export shows one; drafts (暂存) and deleted declarations (删单)
are skipped.

The simulator's side (:meth:`ChinaCustoms.export`) writes each declaration as a one-item
declaration with Chinese headers, a synthetic, well-formed number made from its ID (see
:func:`synthetic_number`) and its value in US dollars.

Codes follow the customs code tables (JGS-20 海关业务代码集): since 2018 countries and
currencies are 3-letter codes (``USA``, ``DEU``, ``GBR``; ``USD``, ``CNY``, ``EUR``), the
ISO 3166-1 alpha-3 and ISO 4217 codes but for a few customs-only areas; older files use the
customs' 3-digit codes (``502`` USA, ``304`` Germany, ``303`` United Kingdom; ``502`` USD,
``142`` CNY, ``300`` EUR), read here from the tables below. Only the supervision codes the
data contract knows are kept (9610, 9710, 9810, 1210, 0110); declarations under any other
(1039 market procurement, 0214 processing trade...) are rejected. A declaration export says
nothing of the export VAT refund: the refund fields are ``0`` / ``none`` / empty.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pycountry

from credit.adapters.base import (
    Adapted,
    Adapter,
    Context,
    Mapping_,
    Reject,
    Skip,
    SourceRow,
    amount,
    fmt_money,
    record_id,
    timestamp,
)
from credit.adapters.fx import Rates
from credit.records import CUSTOMS_REGIMES, vocabulary

# -- columns -----------------------------------------------------------------------------------

NUMBER, ITEM, DATE, FLAG, REGIME = "报关单号", "项号", "申报日期", "进出口标志", "监管方式"
COMMODITY, TRADE_QTY, LEGAL_QTY = "商品编号", "成交数量", "法定第一数量"
TOTAL, CURRENCY = "总价", "币制"
ORIGIN, DESTINATION, ARRIVAL = "原产国(地区)", "最终目的国(地区)", "运抵国(地区)"
STATUS, MODIFIED = "申报状态", "修改时间"

#: other header spellings (lower case, without spaces, dots, dashes or underscores) -> column
_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["报关单号", "海关编号", "报关单编号", "declarationno", "declarationnumber",
         "customsdeclarationno", "customsno", "entryno", "entryid"], NUMBER),
    **dict.fromkeys(["项号", "商品序号", "itemno", "itemnumber", "gno"], ITEM),
    **dict.fromkeys(["申报日期", "declarationdate", "dateofdeclaration"], DATE),
    **dict.fromkeys(
        ["进出口标志", "进出口", "i/eflag", "ieflag", "i/e", "import/exportflag"], FLAG),
    **dict.fromkeys(
        ["监管方式", "贸易方式", "trademode", "supervisionmode", "supervisioncode"], REGIME),
    **dict.fromkeys(["商品编号", "商品编码", "commoditycode", "commodityno", "hscode"], COMMODITY),
    **dict.fromkeys(["成交数量", "quantity", "transactionquantity"], TRADE_QTY),
    **dict.fromkeys(
        ["法定第一数量", "法定数量", "legalquantity", "firstlegalquantity",
         "statutoryquantity"], LEGAL_QTY),
    **dict.fromkeys(["总价", "totalprice", "totalvalue", "totalamount"], TOTAL),
    **dict.fromkeys(["币制", "币种", "currency"], CURRENCY),
    **dict.fromkeys(["原产国(地区)", "原产国", "origincountry", "countryoforigin"], ORIGIN),
    **dict.fromkeys(
        ["最终目的国(地区)", "最终目的国", "destinationcountry", "countryofdestination",
         "finaldestinationcountry", "countryoffinaldestination"], DESTINATION),
    **dict.fromkeys(["运抵国(地区)", "运抵国", "countryofarrival", "arrivalcountry"], ARRIVAL),
    **dict.fromkeys(
        ["申报状态", "通关状态", "报关单状态", "status", "declarationstatus",
         "clearancestatus"], STATUS),
    **dict.fromkeys(
        ["修改时间", "更新时间", "最后修改时间", "modificationtime", "modifiedtime",
         "lastmodified", "updatetime"], MODIFIED),
}  # fmt: skip

# -- code tables -------------------------------------------------------------------------------

#: The customs' 3-digit country codes (used before the 2018 switch to letters) -> ISO 3166-1
#: alpha-2. Regional remainders (199 "other Asia", 299, 399, 499, 599, 699), 701 "unknown",
#: 702 "UN and international organisations", 999 "neutral packing" and the codes of countries
#: that no longer exist (349 Serbia and Montenegro, 449 Netherlands Antilles) name no country
#: and are not listed; the islands the table lists apart go to the country they belong to
#: (207 Canary Islands, 210 Ceuta, 256 Melilla: ES; 604, 605, 612, 615, 616: PF; 409, 436: BQ).
_OLD_COUNTRIES: dict[str, str] = dict(
    re.findall(
        r"(\d{3}):([A-Z]{2})",
        """
    101:AF 102:BH 103:BD 104:BT 105:BN 106:MM 107:KH 108:CY 109:KP 110:HK 111:IN 112:ID 113:IR
    114:IQ 115:IL 116:JP 117:JO 118:KW 119:LA 120:LB 121:MO 122:MY 123:MV 124:MN 125:NP 126:OM
    127:PK 128:PS 129:PH 130:QA 131:SA 132:SG 133:KR 134:LK 135:SY 136:TH 137:TR 138:AE 139:YE
    141:VN 142:CN 143:TW 144:TL 145:KZ 146:KG 147:TJ 148:TM 149:UZ
    201:DZ 202:AO 203:BJ 204:BW 205:BI 206:CM 207:ES 208:CV 209:CF 210:ES 211:TD 212:KM 213:CG
    214:DJ 215:EG 216:GQ 217:ET 218:GA 219:GM 220:GH 221:GN 222:GW 223:CI 224:KE 225:LR 226:LY
    227:MG 228:MW 229:ML 230:MR 231:MU 232:MA 233:MZ 234:NA 235:NE 236:NG 237:RE 238:RW 239:ST
    240:SN 241:SC 242:SL 243:SO 244:ZA 245:EH 246:SD 247:TZ 248:TG 249:TN 250:UG 251:BF 252:CD
    253:ZM 254:ZW 255:LS 256:ES 257:SZ 258:ER 259:YT
    301:BE 302:DK 303:GB 304:DE 305:FR 306:IE 307:IT 308:LU 309:NL 310:GR 311:PT 312:ES 313:AL
    314:AD 315:AT 316:BG 318:FI 320:GI 321:HU 322:IS 323:LI 324:MT 325:MC 326:NO 327:PL 328:RO
    329:SM 330:SE 331:CH 334:EE 335:LV 336:LT 337:GE 338:AM 339:AZ 340:BY 343:MD 344:RU 347:UA
    350:SI 351:HR 352:CZ 353:SK 354:MK 355:BA 356:VA 357:FO 358:RS 359:ME
    401:AG 402:AR 403:AW 404:BS 405:BB 406:BZ 408:BO 409:BQ 410:BR 411:KY 412:CL 413:CO 414:DM
    415:CR 416:CU 417:CW 418:DO 419:EC 420:GF 421:GD 422:GP 423:GT 424:GY 425:HT 426:HN 427:JM
    428:MQ 429:MX 430:MS 431:NI 432:PA 433:PY 434:PE 435:PR 436:BQ 437:LC 439:VC 440:SV 441:SR
    442:TT 443:TC 444:UY 445:VE 446:VG 447:KN 448:PM
    501:CA 502:US 503:GL 504:BM
    601:AU 602:CK 603:FJ 604:PF 605:PF 606:NR 607:NC 608:VU 609:NZ 610:NF 611:PG 612:PF 613:SB
    614:TO 615:PF 616:PF 617:WS 618:KI 619:TV 620:FM 621:MH 622:PW 623:PF 625:WF
    """,
    )
)
#: The customs' letter codes that are not ISO 3166-1 alpha-3 but name part of a country.
_CUSTOMS_ALPHA3 = {"CAI": "ES", "CEU": "ES", "MEL": "ES", "GAM": "PF", "MAI": "PF", "SOC": "PF",
                   "TUA": "PF", "TUB": "PF"}  # fmt: skip
#: The customs' 3-digit currency codes (before 2018) -> ISO 4217.
_OLD_CURRENCIES = {
    "110": "HKD", "113": "IRR", "116": "JPY", "118": "KWD", "121": "MOP", "122": "MYR",
    "127": "PKR", "129": "PHP", "132": "SGD", "136": "THB", "142": "CNY", "143": "TWD",
    "300": "EUR", "302": "DKK", "303": "GBP", "326": "NOK", "330": "SEK", "331": "CHF",
    "501": "CAD", "502": "USD", "601": "AUD", "609": "NZD",
}  # fmt: skip
#: Names the Single Window shows for the supervision codes, for a file that holds the name only.
_REGIME_NAMES = {"电子商务": "9610", "跨境电商B2B直接出口": "9710", "跨境电商出口海外仓": "9810",
                 "保税电商": "1210", "一般贸易": "0110", "市场采购": "1039"}  # fmt: skip

_FLAGS = {"e": "export", "0": "export", "出口": "export", "export": "export",
          "i": "import", "1": "import", "进口": "import", "import": "import"}  # fmt: skip

#: 申报状态 / 通关状态 (and English renderings) -> contract status
_STATUSES = {
    **dict.fromkeys(["放行", "已放行", "海关放行", "结关", "已结关", "released", "cleared",
                     "closed"], "cleared"),
    **dict.fromkeys(["查验", "查验通知", "海关查验", "待查验", "查验中", "inspection",
                     "inspected", "under inspection"], "inspected"),
    **dict.fromkeys(["挂起", "海关挂起", "扣留", "扣留移送通关", "扣留移送缉私", "扣留移送法规",
                     "其他扣留", "held", "on hold", "suspended", "detained"], "held"),
    **dict.fromkeys(["退单", "海关退单", "已退单", "returned", "rejected"], "rejected"),
}  # fmt: skip
#: statuses of a declaration lodged but not yet decided: no clearance outcome yet
_IN_CLEARANCE = frozenset(["申报中", "已申报", "申报成功", "单一窗口申报中", "海关入库",
                           "海关入库成功", "入库成功", "人工审核", "待审核", "审结", "海关审结",
                           "submitted", "declared", "accepted", "under review"])  # fmt: skip
_DRAFTS = frozenset(["暂存", "单一窗口暂存", "电子口岸已暂存", "draft", "saved"])
_DELETED = frozenset(["删单", "已删单", "deleted", "withdrawn"])

_NUMBER_RE = re.compile(r"\d{8}[01EI]\d{9}")
_SCIENTIFIC = re.compile(r"\d(\.\d+)?E\+?\d+")
_DAY = re.compile(
    r"(?P<y>\d{4})(?:[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?|(?P<m2>\d{2})(?P<d2>\d{2}))"
    r"(?P<time>[ T].*)?"
)

#: the customs code of the synthetic declaration numbers the simulator's files carry
#: (5300: the Shenzhen customs district)
SYNTHETIC_CUSTOMS_CODE = "5300"
_STATUS_TEXT = {"cleared": "放行", "inspected": "查验", "held": "挂起", "rejected": "退单"}
_EXPORT_HEADER = [NUMBER, ITEM, DATE, FLAG, REGIME, COMMODITY, TRADE_QTY, LEGAL_QTY, TOTAL,
                  CURRENCY, ORIGIN, DESTINATION, STATUS]  # fmt: skip


@dataclass(frozen=True)
class _Version:
    """One source row of a declaration item: a version of it."""

    line: int
    row: dict[str, str]
    modified: str  # ISO timestamp, "" when the file does not say


class ChinaCustoms(Adapter):
    name = "cn-customs"
    title = "China Single Window customs declarations (报关单查询 export, one row per item)"
    reference = "https://exp.czl.net/en/12769.html"
    record_type = "customs"
    signature = frozenset({NUMBER, REGIME, COMMODITY, CURRENCY})
    required = (NUMBER, ITEM, DATE, REGIME, COMMODITY, TOTAL, CURRENCY, STATUS)
    mapping = (
        Mapping_(
            "declaration_id",
            "报关单号 (海关编号, Declaration No.), 项号 (Item No.), 修改时间 (更新时间, "
            "Modification Time)",
            "`cn-<报关单号>-<项号>`, one record per declaration item (项号 without leading "
            "zeros: a one-item declaration is `cn-<number>-1`). The number must be the 18 "
            "characters the customs give: 4-digit customs code, 4-digit year, I/E flag (0 or "
            "1; E or I on a consolidated list), 9-digit serial; any other is rejected, as is "
            "one a spreadsheet turned into a number (5.30E+17). Rows of the same number and "
            "item are versions of the item (改单, an amendment): the one with the latest "
            "修改时间 is the record (a row without one counts as older; among equal times, the "
            "later line); the others are skipped, 'superseded by the amendment on line N' (or "
            "'listed twice' when identical); when the latest version is rejected, so are they",
        ),
        Mapping_("firm_id", "-", "the firm named with --firm"),
        Mapping_(
            "declared_at",
            "申报日期 (Declaration Date)",
            "the calendar date as written (2024-03-05, 2024/3/5, 20240305, 2024年3月5日; a "
            "time of day is dropped): the customs' date in Beijing, kept as that date",
        ),
        Mapping_(
            "direction",
            "报关单号 (its 9th character), 进出口标志 (I/E Flag)",
            "0 or E: export; 1 or I: import. 进出口标志 (E/I, 0/1, 出口/进口, export/import) "
            "is optional; a flag that disagrees with the number is rejected",
        ),
        Mapping_(
            "regime",
            "监管方式 (贸易方式, Trade Mode)",
            "the 4-digit supervision code, alone or with its name (9610 电子商务, 一般贸易(0110)) "
            "or the name alone; a 3-digit 110 is 0110 (a spreadsheet dropped the zero). "
            "9610, 9710, 9810, 1210, 0110 are kept; any other (1039 市场采购, 0214 来料加工...) "
            "is rejected, naming the allowed ones",
        ),
        Mapping_(
            "hs_code",
            "商品编号 (Commodity Code)",
            "the first 6 digits (the HS subheading) of the 10-digit code, or of an older 8-digit "
            "one; dots and spaces are ignored; any other length is rejected",
        ),
        Mapping_(
            "origin_country",
            "原产国(地区) (Origin Country)",
            "a customs country code to ISO 3166-1 alpha-2 (see destination_country); empty "
            "on an export: CN (goods exported from China are taken to be of Chinese origin); "
            "empty on an import: rejected",
        ),
        Mapping_(
            "destination_country",
            "最终目的国(地区) (Destination Country), else 运抵国(地区) (Country of Arrival)",
            "3 letters (USA, DEU, GBR: ISO 3166-1 alpha-3, and the customs' CAI, CEU, MEL: ES; "
            "GAM, MAI, SOC, TUA, TUB: PF) or the customs' older 3 digits (502 US, 304 DE, 303 "
            "GB, 142 CN...), optionally followed by the name (USA 美国), to ISO 3166-1 alpha-2; "
            "an ISO alpha-2 code is kept. Empty on an import: CN. ZZZ (unknown), the regional "
            "remainders and any other code: rejected",
        ),
        Mapping_(
            "value_usd",
            "总价 (Total Price), 币制 (Currency)",
            "the item's total price, converted to USD at the rate of the declaration date "
            "(--fx); 币制 in letters (USD, CNY, EUR) or the customs' older 3 digits (502 USD, "
            "142 CNY, 300 EUR, 110 HKD, 116 JPY, 303 GBP...); a day with no rate: rejected",
        ),
        Mapping_(
            "quantity",
            "法定第一数量 (Legal Quantity), else 成交数量 (Quantity)",
            "the quantity in the first legal unit of the commodity code, the customs' "
            "statistical unit; the transaction (invoice) quantity only when the file has no "
            "legal quantity for the row",
        ),
        Mapping_(
            "status",
            "申报状态 (通关状态, Status)",
            "放行, 结关 (released, cleared, closed): cleared; 查验, 查验通知 (inspection): "
            "inspected; 挂起, 扣留... (held, suspended, detained): held; 退单, 海关退单 "
            "(returned, rejected): rejected. Not yet decided (申报中, 海关入库成功, 人工审核, "
            "审结...): rejected, to be ingested from a later export; a draft (暂存) or a "
            "deleted declaration (删单): skipped; any other: rejected",
        ),
        Mapping_("tax_refund_usd", "-", "0: a declaration export holds no export VAT refund"),
        Mapping_("tax_refund_status", "-", "`none`"),
        Mapping_("tax_refund_settled_at", "-", "empty"),
    )
    unused = ("统一编号 (the Single Window's own number)", "商品名称, 规格型号 (goods, model)",
              "单价 (unit price)", "成交单位, 法定第一单位, 法定第二数量, 法定第二单位 (units)",
              "运抵国(地区) when 最终目的国(地区) is given", "贸易国(地区), 启运国(地区)",
              "境内收发货人, 生产销售单位, 消费使用单位, 申报单位 (the parties)",
              "运输方式, 成交方式, 运费, 保费, 杂费 (transport, incoterm, charges)",
              "征免, 境内货源地, 境内目的地, 出境关别, 进境关别", "毛重, 净重, 件数 (weights, "
              "packages)", "备注 (remarks)")  # fmt: skip
    not_carried = {
        "tax_refund_usd": "0 (the export VAT refund is claimed from the tax office later, "
        "not on the declaration)",
        "tax_refund_status": "none",
        "tax_refund_settled_at": "empty",
    }

    def canonical(self, column: str) -> str:
        c = column.strip().replace("（", "(").replace("）", ")")
        key = re.sub(r"[\s._:：\-]", "", c.lower())
        return _ALIASES.get(key, c)

    # -- reading ----------------------------------------------------------------------------

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        outcomes: dict[int, SourceRow] = {}
        items: dict[tuple[str, int], list[_Version]] = {}
        for line, row in rows:
            try:
                key, modified = _identify(row)
            except Reject as exc:
                outcomes[line] = SourceRow(line, "rejected", str(exc))
            except Skip as exc:
                outcomes[line] = SourceRow(line, "skipped", str(exc))
            else:
                items.setdefault(key, []).append(_Version(line, row, modified))
        for key, versions in items.items():
            rid = record_id("cn", *key)
            latest = max(versions, key=lambda v: (v.modified, v.line))
            older = [v for v in versions if v is not latest]
            try:
                record, source = self._record(rid, latest, ctx)
            except Reject as exc:
                outcomes[latest.line] = SourceRow(latest.line, "rejected", str(exc),
                                                  self.record_type, rid)  # fmt: skip
                for v in older:
                    outcomes[v.line] = SourceRow(
                        v.line, "rejected",
                        f"its latest version, on line {latest.line}, is rejected: {exc}",
                        self.record_type, rid,
                    )  # fmt: skip
                continue
            except Skip as exc:
                outcomes[latest.line] = SourceRow(latest.line, "skipped", str(exc),
                                                  self.record_type, rid)  # fmt: skip
            else:
                out.records.append(record)
                outcomes[latest.line] = source
            for v in older:
                reason = (
                    f"the same declaration item as line {latest.line} (listed twice)"
                    if v.row == latest.row
                    else f"superseded by the amendment on line {latest.line}"
                )
                outcomes[v.line] = SourceRow(v.line, "skipped", reason, self.record_type, rid)
        out.rows = [outcomes[line] for line in sorted(outcomes)]
        return out

    def _record(
        self, rid: str, version: _Version, ctx: Context
    ) -> tuple[dict[str, Any], SourceRow]:
        row = version.row
        status = _status(row.get(STATUS, ""))
        regime = _regime(row.get(REGIME, ""))
        hs_code = _hs_code(row.get(COMMODITY, ""))
        number = row[NUMBER].strip().lstrip("'").upper()
        direction = _direction(number, row.get(FLAG, ""))
        declared = _day(row.get(DATE, ""), f"{DATE} (declaration date)")
        origin_text = row.get(ORIGIN, "")
        if origin_text:
            origin = _country(origin_text, f"{ORIGIN} (origin country)")
        elif direction == "export":
            origin = "CN"
        else:
            raise Reject(f"{ORIGIN} (origin country) is empty: an import declaration names it")
        dest_column = DESTINATION if row.get(DESTINATION) else ARRIVAL
        if row.get(dest_column):
            destination = _country(row[dest_column], f"{dest_column} (destination country)")
        elif direction == "import":
            destination = "CN"
        else:
            raise Reject(
                f"{DESTINATION} and {ARRIVAL} (destination country) are both empty: an export "
                "declaration names where the goods go"
            )
        quantity = _quantity(row)
        total = amount(row.get(TOTAL, ""), f"{TOTAL} (total price)")
        currency = _currency(row.get(CURRENCY, ""))
        usd, rate = ctx.usd(total, currency, declared)
        record = {
            "declaration_id": rid,
            "firm_id": ctx.firm_id,
            "declared_at": declared,
            "direction": direction,
            "regime": regime,
            "hs_code": hs_code,
            "origin_country": origin,
            "destination_country": destination,
            "value_usd": usd,
            "quantity": quantity,
            "status": status,
            "tax_refund_usd": 0.0,
            "tax_refund_status": "none",
            "tax_refund_settled_at": None,
        }
        source = SourceRow(version.line, "mapped", "", self.record_type, rid, currency, total, rate)
        return record, source

    # -- the simulator's side -------------------------------------------------------------

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        out["tax_refund_usd"] = 0.0
        out["tax_refund_status"] = "none"
        out["tax_refund_settled_at"] = pd.NaT
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        """The records as a Single Window export with Chinese headers, one item per
        declaration. Values are written in US dollars whether or not ``rates`` are given
        (customs values are mostly declared in USD), so they come back exactly."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_EXPORT_HEADER)
        for r in records.to_dict("records"):
            day: pd.Timestamp = r["declared_at"]
            direction = str(r["direction"])
            quantity = np.format_float_positional(float(r["quantity"]), trim="-")
            w.writerow([
                synthetic_number(str(r["declaration_id"]), day.year, direction), 1,
                day.strftime("%Y-%m-%d"), "E" if direction == "export" else "I", r["regime"],
                f"{r['hs_code']}0000", quantity, quantity,
                fmt_money(float(r["value_usd"]), "USD"), "USD",
                _alpha3(str(r["origin_country"])), _alpha3(str(r["destination_country"])),
                _STATUS_TEXT[str(r["status"])],
            ])  # fmt: skip
        return buf.getvalue()


def synthetic_number(declaration_id: str, year: int, direction: str) -> str:
    """A well-formed 18-digit declaration number for a simulated declaration: the synthetic
    customs code, the year, the I/E flag and a 9-digit serial, the digits of an ID such as
    ``D000001234`` (a letter prefix and at most 9 significant digits, as the simulator's IDs
    are), else 9 digits of a hash of the ID. The same ID always gives the same number."""
    m = re.fullmatch(r"[A-Za-z]*0*(\d{1,9})", declaration_id)
    if m:
        serial = int(m.group(1))
    else:
        serial = int(hashlib.sha256(declaration_id.encode()).hexdigest(), 16) % 10**9
    flag = "0" if direction == "export" else "1"
    return f"{SYNTHETIC_CUSTOMS_CODE}{year:04d}{flag}{serial:09d}"


# -- values --------------------------------------------------------------------------------------


def _identify(row: dict[str, str]) -> tuple[tuple[str, int], str]:
    """The item a row is a version of (declaration number, item number) and its 修改时间."""
    if row.get(STATUS, "").strip().lower() in _DRAFTS:
        raise Skip("a draft saved in the Single Window (暂存), not lodged with the customs")
    if "\x00extra" in row:
        raise Reject(
            "the row has more cells than the header: a value holds an unquoted comma (write "
            "1,234.56 as 1234.56 or quote it)"
        )
    text = row.get(NUMBER, "")
    number = text.strip().lstrip("'").upper()
    if not number:
        raise Reject(f"{NUMBER} (declaration number) is empty")
    if _SCIENTIFIC.fullmatch(number):
        raise Reject(
            f"{NUMBER} {text!r} was turned into a number by a spreadsheet and lost its digits: "
            "export the column as text (18 characters)"
        )
    if not _NUMBER_RE.fullmatch(number):
        raise Reject(
            f"{NUMBER} {text!r} is not a declaration number: 18 characters, the 4-digit "
            "customs code, the year, 0 (export) or 1 (import), a 9-digit serial"
        )
    item_text = row.get(ITEM, "").strip()
    if not re.fullmatch(r"\d{1,3}", item_text) or int(item_text) == 0:
        raise Reject(f"{ITEM} (item number) {item_text!r} is not an item number (1, 2, 3...)")
    modified = row.get(MODIFIED, "").strip()
    return (number, int(item_text)), _moment(modified, MODIFIED) if modified else ""


def _date_part(text: str, what: str) -> tuple[date, str] | None:
    """The date a value starts with, as the Single Window writes it (``2024-03-05``,
    ``2024/3/5``, ``20240305``, ``2024年3月5日``), and the rest (a time of day); ``None`` when
    it is written otherwise."""
    m = _DAY.fullmatch(text.strip())
    if not m:
        return None
    try:
        day = date(int(m["y"]), int(m["m"] or m["m2"]), int(m["d"] or m["d2"]))
    except ValueError:
        raise Reject(f"{what} {text!r} is not a date") from None
    return day, m["time"] or ""


def _moment(text: str, what: str) -> str:
    """A date or date-time (``2024/03/05 10:22:31``...) as an ISO timestamp string."""
    parts = _date_part(text, what)
    return timestamp(parts[0].isoformat() + parts[1] if parts else text, what)


def _day(text: str, what: str) -> str:
    """The calendar date of a 申报日期 as written, at midnight (a time of day is dropped)."""
    parts = _date_part(text, what)
    day = parts[0].isoformat() if parts else timestamp(text, what)[:10]
    return f"{day}T00:00:00"


def _direction(number: str, flag: str) -> str:
    direction = "export" if number[8] in "0E" else "import"
    if flag.strip():
        given = _FLAGS.get(flag.strip().lower())
        if given is None:
            raise Reject(
                f"{FLAG} (I/E flag) {flag!r} is not one of E, I, 0, 1, 出口, 进口, export, import"
            )
        if given != direction:
            raise Reject(
                f"{FLAG} (I/E flag) {flag!r} says {given} but the declaration number {number} "
                f"is an {direction} declaration (9th character {number[8]})"
            )
    return direction


def _regime(text: str) -> str:
    t = text.strip()
    if re.fullmatch(r"\d{3}", t):
        code = t.zfill(4)
    else:
        m = re.search(r"(?<!\d)\d{4}(?!\d)", t)
        code = m.group(0) if m else _REGIME_NAMES.get(t, "")
    allowed = ", ".join(CUSTOMS_REGIMES)
    if not code:
        raise Reject(
            f"{REGIME} (trade mode) {text!r} is not a supervision code (4 digits; the data "
            f"contract allows {allowed})"
        )
    if code not in CUSTOMS_REGIMES:
        raise Reject(
            f"{REGIME} (trade mode) {code} is not one the data contract allows ({allowed})"
        )
    return code


def _hs_code(text: str) -> str:
    digits = re.sub(r"[.\s]", "", text)
    if not re.fullmatch(r"\d{10}|\d{8}", digits):
        raise Reject(
            f"{COMMODITY} (commodity code) {text!r} is not a 10-digit commodity code (or an "
            "older 8-digit one)"
        )
    return digits[:6]


def _code(text: str) -> str:
    """The code at the start of a value such as ``USA``, ``502``, ``USA 美国``."""
    m = re.match(r"([A-Z]{2,3}|\d{3})(?![A-Z0-9])", text.strip().upper())
    return m.group(1) if m else ""


def _country(text: str, what: str) -> str:
    code = _code(text)
    iso: str | None = None
    if code.isdigit():
        iso = _OLD_COUNTRIES.get(code)
    elif len(code) == 3:
        country = pycountry.countries.get(alpha_3=code)
        iso = _CUSTOMS_ALPHA3.get(code) or (country.alpha_2 if country else None)
    elif code in vocabulary("iso3166"):
        iso = code
    if iso is None:
        raise Reject(
            f"{what} {text!r} is not a country code of the customs (3 letters such as USA, "
            "DEU, GBR, or the older 3 digits such as 502, 304, 303; not ZZZ, unknown)"
        )
    return iso


def _currency(text: str) -> str:
    code = _code(text)
    currency = _OLD_CURRENCIES.get(code, "") if code.isdigit() else code
    if not text.strip():
        raise Reject(f"{CURRENCY} (currency) is empty")
    if currency not in vocabulary("iso4217"):
        raise Reject(
            f"{CURRENCY} (currency) {text!r} is not a currency code of the customs (3 letters "
            "such as USD, CNY, EUR, or the older 3 digits such as 502, 142, 300)"
        )
    return currency


def _quantity(row: dict[str, str]) -> float:
    if row.get(LEGAL_QTY):
        return amount(row[LEGAL_QTY], f"{LEGAL_QTY} (legal quantity)")
    if row.get(TRADE_QTY):
        return amount(row[TRADE_QTY], f"{TRADE_QTY} (quantity)")
    raise Reject(f"no quantity: {LEGAL_QTY} and {TRADE_QTY} are both empty")


def _status(text: str) -> str:
    t = text.strip().lower()
    if t in _STATUSES:
        return _STATUSES[t]
    if t in _DELETED:
        raise Skip("a deleted declaration (删单): it no longer stands")
    if t in _IN_CLEARANCE:
        raise Reject(
            f"{STATUS} {text!r}: the declaration is still in clearance, with no outcome yet; "
            "ingest it from a later export, once released"
        )
    raise Reject(
        f"unknown {STATUS} (declaration status) {text!r}: expected 放行 or 结关 (cleared), "
        "查验 (inspected), 挂起 or 扣留 (held), 退单 (rejected), or their English names"
    )


def _alpha3(alpha2: str) -> str:
    country = pycountry.countries.get(alpha_2=alpha2)
    if country is None:
        raise ValueError(f"{alpha2!r} is not an ISO 3166-1 alpha-2 country code")
    return str(country.alpha_3)


ADAPTER = ChinaCustoms()
