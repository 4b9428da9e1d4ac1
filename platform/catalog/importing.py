"""Reading and checking catalog files: pure functions over plain data, no database.

A catalog file is CSV (UTF-8, with or without a byte-order mark), XLSX (the first
sheet) or a JSON array of row objects, with the columns of docs/catalog.md
("The row"): `sku, name, price, currency, tax_rate, weight_g, barcode`, plus
the optional `weight_tolerance_g`, `image_url` and `status`.

Files are read as streams, one row at a time. Every row is checked on its own and
every problem is reported with the row number a person sees in a spreadsheet
(the header is row 1, the first product row 2; for a JSON array, the item's
position counting from 1); the first `MAX_ERRORS_LISTED` problems are kept, the
others counted. Problems with the file as a whole (not UTF-8, not a
spreadsheet, a required column missing, too large) raise `CatalogFileError`.

An XLSX file is a zip of XML parts, and a small one can hold hundreds of
megabytes: before openpyxl reads it (streaming, read-only), `workbook_size`
inflates its parts once, counting, and refuses a workbook that holds more than
`MAX_WORKBOOK_BYTES` or whose shared-strings part (which openpyxl keeps whole in
memory) holds more than `MAX_SHARED_STRINGS_BYTES`. Callers use the size to send
large workbooks to the background.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any, Final, Protocol
from urllib.parse import urlsplit

import openpyxl

from catalog import currencies
from core import bounded_json
from core.spreadsheets import unmarked

REQUIRED_COLUMNS: Final = ("sku", "name", "price", "currency", "tax_rate", "weight_g")
OPTIONAL_COLUMNS: Final = ("barcode", "weight_tolerance_g", "image_url", "status", "min_age")
# The order of an export, which an import reads back unchanged.
COLUMNS: Final = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
STATUSES: Final = ("active", "archived")
GTIN_LENGTHS: Final = (8, 12, 13, 14)
MAX_ROWS: Final = 500_000
MAX_ERRORS_LISTED: Final = 1_000
MAX_WORKBOOK_BYTES: Final = 512 * 1024 * 1024  # 500,000 rows of 10 columns take about 200 MB of XML
MAX_SHARED_STRINGS_BYTES: Final = 64 * 1024 * 1024
HEADER_WITHIN_ROWS: Final = 100

MAX_SKU_LENGTH: Final = 64
MAX_NAME_LENGTH: Final = 200
MAX_URL_LENGTH: Final = 500
MAX_PRICE_MINOR: Final = 10**12  # ten billion dollars for a single item is a typo
MAX_AGE: Final = 150
MAX_WEIGHT_G: Final = Decimal("99999999.99")  # the model's DecimalField(max_digits=10, decimal_places=2)

FORMULA_MESSAGE: Final = "formulas are not accepted, paste values"
_HUNDRED: Final = Decimal(100)
_CENTI: Final = Decimal("0.01")
_MIN_TOLERANCE_G: Final = Decimal(2)
_TOLERANCE_SHARE: Final = Decimal("0.05")

_NUMBER = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)")
_SKU = re.compile(rf"[^\x00-\x20\x7f/\\]{{1,{MAX_SKU_LENGTH}}}")
_BARCODE_SPLIT = re.compile(r"[|;,\s]+")


def parse_barcodes(text: str) -> tuple[tuple[str, ...], list[str]]:
    """GTINs separated by commas, semicolons, bars, spaces or new lines: the distinct codes, and what is wrong
    with any of them (digits only, 8/12/13/14 of them, a right check digit)."""
    barcodes = tuple(dict.fromkeys(code for code in _BARCODE_SPLIT.split(text) if code))
    problems = []
    for code in barcodes:
        if not code.isascii() or not code.isdigit():
            problems.append(f"barcode {code[:20]!r} must be digits only")
        elif len(code) not in GTIN_LENGTHS:
            problems.append(f"barcode {code} must have 8, 12, 13 or 14 digits (a GTIN), not {len(code)}")
        elif not gtin_is_valid(code):
            problems.append(
                f"barcode {code} has a wrong check digit (expected {gtin_check_digit(code[:-1])}, got {code[-1]})"
            )
    return barcodes, problems


class CatalogFileError(ValueError):
    """The file as a whole cannot be imported (not UTF-8, not a spreadsheet, a required column missing...)."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad row: its number as a person sees it, and what is wrong with it."""

    row: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "message": self.message}


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One good row, converted: money in minor units, weights and tax as Decimal.

    `barcodes`, `image_url`, `status` and `min_age` are None when the file has no such column: an existing
    product then keeps what it has (a new one gets no barcode, no image, active, no age limit). An empty
    `min_age` cell is 0: the product is not age-restricted.
    """

    row: int
    sku: str
    name: str
    currency: str
    unit_price: int
    tax_rate: Decimal
    weight_g: Decimal
    weight_tolerance_g: Decimal
    barcodes: tuple[str, ...] | None
    image_url: str | None
    status: str | None
    min_age: int | None = None


@dataclass
class ParsedCatalog:
    """What a file holds: its good rows, the first MAX_ERRORS_LISTED problems found, and how many rows were bad."""

    rows: list[CatalogRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    bad_rows: int = 0
    stopped_at: int | None = None  # the row where reading stopped, when it stopped before the end

    def add_error(self, error: RowError) -> None:
        self.bad_rows += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(error)


RawRow = tuple[int, Mapping[str, Any]]


class RowSource(Protocol):
    """Rows of a catalog file as `(row number, {column: raw value})`."""

    columns: frozenset[str] | None  # the header's columns; None when each row names its own (JSON)

    def __iter__(self) -> Iterator[RawRow]: ...

    def fraction_read(self) -> float: ...


class Formula:
    """A spreadsheet cell holding a formula instead of a value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Formula()"


FORMULA: Final = Formula()


def normalise_column(name: Any) -> str:
    """'Tax Rate ' -> 'tax_rate', so that headers typed by people still match."""
    text = "" if name is None else str(name)
    return "_".join(text.replace("\ufeff", "").strip().lower().replace("-", " ").split())


def _header_index(header: Sequence[Any]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = normalise_column(raw)
        if not name:
            continue
        if name in index:
            raise CatalogFileError(f"The column {name!r} appears twice in the header.", row=1)
        index[name] = position
    return index


# --- readers ---------------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read from it, for progress."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self.bytes_read += count
        return count


def _stream_size(stream: IO[bytes]) -> int | None:
    try:
        position = stream.tell()
        size = stream.seek(0, io.SEEK_END)
        stream.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return int(size) - int(position)


class CsvSource:
    """Rows of a UTF-8 CSV file (a byte-order mark is allowed), read as a stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._size = _stream_size(stream)
        self._counter = _CountingReader(stream)
        buffered = io.BufferedReader(self._counter, buffer_size=256 * 1024)
        self._text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="strict", newline="")
        self._reader = csv.reader(self._text)
        header = self._next_record()
        if header is None:
            raise CatalogFileError("The file is empty: it needs a header row and at least one product row.")
        self._index = _header_index(header)
        self.columns: frozenset[str] | None = frozenset(self._index)

    def _next_record(self) -> list[str] | None:
        try:
            return next(self._reader, None)
        except UnicodeDecodeError as error:
            raise CatalogFileError(
                "The file is not UTF-8 text. Save it as 'CSV UTF-8' (or export it as XLSX) and upload it again."
            ) from error
        except csv.Error as error:
            raise CatalogFileError(f"The CSV file cannot be read near row {self._reader.line_num}: {error}.") from error

    def fraction_read(self) -> float:
        if not self._size:
            return 0.0
        return min(1.0, self._counter.bytes_read / self._size)

    def __iter__(self) -> Iterator[RawRow]:
        index = list(self._index.items())
        row_number = 1
        while True:
            record = self._next_record()
            if record is None:
                return
            row_number += 1
            if not any(cell.strip() for cell in record):
                continue
            width = len(record)
            yield row_number, {name: record[i] if i < width else "" for name, i in index}


def _xlsx_value(cell: Any) -> Any:
    if cell.data_type == "f":
        return FORMULA
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return str(value)


class XlsxSource:
    """Rows of the first sheet of an XLSX workbook, read with openpyxl's streaming (read-only) mode.

    The workbook is read with `data_only=False` so that cells holding formulas are seen as such.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        workbook_size(stream)
        try:
            self._workbook = openpyxl.load_workbook(stream, read_only=True, data_only=False)
            self._sheet = self._workbook.worksheets[0]
        except Exception as error:
            raise CatalogFileError(NOT_A_WORKBOOK) from error
        self._rows_done = 0
        self._header_row = 0
        header: list[Any] | None = None
        first = self._sheet.min_row or 1
        for number, cells in enumerate(self._sheet.iter_rows(max_row=first + HEADER_WITHIN_ROWS - 1), start=first):
            values = [_xlsx_value(cell) for cell in cells]
            if any(value != "" for value in values):
                self._header_row = number
                header = [("" if value is FORMULA else value) for value in values]
                break
        if header is None:
            raise CatalogFileError(
                f"The first sheet has no header row in its first {HEADER_WITHIN_ROWS} rows: it needs a header row "
                "and at least one product row."
            )
        if (self._sheet.max_row or 0) > self._header_row + MAX_ROWS:  # as the sheet declares it: refused at once
            raise CatalogFileError(f"The file has more than {MAX_ROWS:,} product rows; split it into smaller files.")
        self._index = _header_index(header)
        self.columns: frozenset[str] | None = frozenset(self._index)

    def fraction_read(self) -> float:
        total = self._sheet.max_row
        if not total:
            return 0.0
        return min(1.0, (self._header_row + self._rows_done) / total)

    def __iter__(self) -> Iterator[RawRow]:
        index = list(self._index.items())
        width = max(self._index.values(), default=0) + 1
        try:
            rows = self._sheet.iter_rows(min_row=self._header_row + 1, max_col=width)
            for offset, cells in enumerate(rows):
                self._rows_done = offset + 1
                row_number = self._header_row + 1 + offset
                values = {name: _xlsx_value(cells[i]) if i < len(cells) else "" for name, i in index}
                if all(value == "" for value in values.values()):
                    continue
                yield row_number, values
        finally:
            self._workbook.close()


NOT_A_WORKBOOK: Final = (
    "The file is not a readable XLSX workbook. Save it from your spreadsheet as .xlsx or as CSV UTF-8."
)


_ROW_START = re.compile(rb"<(?:\w+:)?row[\s/>]")


def workbook_size(stream: IO[bytes]) -> int:
    """The bytes an XLSX workbook holds once inflated, counted by inflating its parts (their declared sizes can lie)
    a megabyte at a time; CatalogFileError when it holds more than a catalog can: too many bytes, too many texts,
    or a sheet of more rows than a catalog has (counted here: openpyxl would read a sheet that does not declare
    its size whole, just to size it). Leaves `stream` at its start."""
    total = 0
    try:
        with zipfile.ZipFile(stream) as workbook:
            for part in workbook.infolist():
                total += _part_size(workbook, part, before=total)
    except CatalogFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error) as error:
        raise CatalogFileError(NOT_A_WORKBOOK) from error
    finally:
        stream.seek(0)
    return total


def _part_size(workbook: zipfile.ZipFile, part: zipfile.ZipInfo, *, before: int) -> int:
    size = rows = 0
    tail = b""  # the end of the last block, for a row tag cut in two
    sheet = part.filename.startswith("xl/worksheets/")
    with workbook.open(part) as member:
        while block := member.read(1 << 20):
            size += len(block)
            if before + size > MAX_WORKBOOK_BYTES:
                raise CatalogFileError(
                    f"The workbook holds more than {MAX_WORKBOOK_BYTES // 2**20} MB once unzipped, more than a "
                    "catalog of 500,000 products takes; split it, or save it as CSV."
                )
            if part.filename.endswith("sharedStrings.xml") and size > MAX_SHARED_STRINGS_BYTES:
                raise CatalogFileError(
                    f"The workbook's texts take more than {MAX_SHARED_STRINGS_BYTES // 2**20} MB once unzipped, "
                    "more than a catalog's names do; save it as CSV instead."
                )
            if sheet:  # the rows in this block, and one whose tag straddles the two last blocks
                seam = tail + block[:8]
                rows += sum(1 for m in _ROW_START.finditer(seam) if m.start() < len(tail) < m.end())
                rows += len(_ROW_START.findall(block))
                tail = block[-8:]
                if rows > MAX_ROWS + HEADER_WITHIN_ROWS:
                    raise CatalogFileError(
                        f"The file has more than {MAX_ROWS:,} product rows; split it into smaller files."
                    )
    return size


def _json_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value
    return value  # lists and objects: reported as not a text/number by the row checks


class JsonSource:
    """Rows of a JSON array of objects (already parsed); row numbers are positions counting from 1."""

    columns: frozenset[str] | None = None

    def __init__(self, items: Any) -> None:
        if not isinstance(items, list):
            raise CatalogFileError("The JSON body must be an array of row objects.")
        if not items:
            raise CatalogFileError("The array is empty: send at least one product row.")
        self._items: list[Any] = items
        self._done = 0

    def fraction_read(self) -> float:
        return self._done / len(self._items)

    def __iter__(self) -> Iterator[RawRow]:
        for position, item in enumerate(self._items, start=1):
            self._done = position
            if not isinstance(item, dict):
                yield position, {"__not_an_object__": item}
                continue
            yield position, {normalise_column(key): _json_value(value) for key, value in item.items()}


def is_workbook(stream: IO[bytes], *, filename: str = "") -> bool:
    """Whether an upload is an XLSX workbook: by its zip signature, or its name."""
    head = stream.read(4)
    stream.seek(0)
    return head == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm"))


def size_to_read(stream: IO[bytes], *, filename: str = "") -> int:
    """The bytes an import of this upload reads: a workbook's once unzipped, any other file's own.
    CatalogFileError for a workbook that cannot be read or holds too much."""
    if is_workbook(stream, filename=filename):
        return workbook_size(stream)
    return _stream_size(stream) or 0


def open_source(stream: IO[bytes], *, filename: str = "") -> RowSource:
    """A row source for an uploaded file: XLSX by its zip signature (or name), JSON by its `[`, CSV otherwise."""
    head = stream.read(8)
    stream.seek(0)
    name = filename.lower()
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise CatalogFileError("Old Excel (.xls) files are not supported; save the sheet as .xlsx or as CSV UTF-8.")
    if is_workbook(stream, filename=filename):
        return XlsxSource(stream)
    if name.endswith(".json") or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return _json_file_source(stream)
    return CsvSource(stream)


def _json_file_source(stream: IO[bytes]) -> JsonSource:
    data = stream.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return JsonSource(bounded_json.loads(data, what="The file"))
    except bounded_json.JSONRefused as error:
        raise CatalogFileError(f"{error.reason}.") from error


# --- checks ----------------------------------------------------------------------------------------


def gtin_is_valid(code: str) -> bool:
    """A GTIN-8/12/13/14: digits only, of one of those lengths, with a correct check digit."""
    if len(code) not in GTIN_LENGTHS or not code.isascii() or not code.isdigit():
        return False
    return gtin_check_digit(code[:-1]) == int(code[-1])


def gtin_check_digit(payload: str) -> int:
    """The check digit for the digits before it (weights 3, 1, 3... from the right)."""
    total = 3 * sum(map(int, payload[-1::-2])) + sum(map(int, payload[-2::-2]))
    return (10 - total % 10) % 10


def default_weight_tolerance(weight_g: Decimal) -> Decimal:
    """How far one unit may weigh from its nominal weight when the file does not say: max(2 g, 5 %)."""
    return max(_MIN_TOLERANCE_G, (weight_g * _TOLERANCE_SHARE).quantize(_CENTI, rounding=ROUND_HALF_UP))


def _text(value: Any) -> str | None:
    """The cell as stripped text (without the mark our exports put before text that looks like a formula), or
    None when it is not text (a formula, a nested JSON value)."""
    if isinstance(value, str):
        return unmarked(value).strip()
    return None


def _decimal(value: Any, label: str, problems: list[str]) -> Decimal | None:
    text = _text(value)
    if text is None:
        problems.append(f"{label}: {FORMULA_MESSAGE}" if value is FORMULA else f"{label}: expected a number")
        return None
    if not text:
        problems.append(f"{label} is required")
        return None
    if text.startswith("-"):
        problems.append(f"{label} must not be negative (got {text!r})")
        return None
    if len(text) > 24 or not _NUMBER.fullmatch(text):
        problems.append(f"{label}: {text[:40]!r} is not a number (use digits and a dot, like 3.49)")
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover — the pattern only lets numbers through
        problems.append(f"{label}: {text!r} is not a number")
        return None


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def check_row(
    row: int, raw: Mapping[str, Any], *, columns: frozenset[str] | None, default_currency: str | None = None
) -> CatalogRow | RowError:
    """Check and convert one row. Every problem of the row is listed in the one error."""
    problems: list[str] = []
    if "__not_an_object__" in raw:
        return RowError(row, "each row must be an object with the catalog columns as keys")
    present = columns if columns is not None else frozenset(raw)
    if columns is None:
        missing = [
            name
            for name in REQUIRED_COLUMNS
            if name not in raw and not (name == "currency" and default_currency is not None)
        ]
        if missing:
            return RowError(row, f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")

    sku = _text(raw.get("sku", ""))
    if sku is None:
        problems.append(f"sku: {FORMULA_MESSAGE}" if raw.get("sku") is FORMULA else "sku: expected text")
    elif not sku:
        problems.append("sku is required")
    elif not _SKU.fullmatch(sku):
        problems.append(
            f"sku {sku[:70]!r} must be 1 to {MAX_SKU_LENGTH} characters without spaces or slashes"
            if len(sku) <= MAX_SKU_LENGTH
            else f"sku is longer than {MAX_SKU_LENGTH} characters"
        )

    name = _text(raw.get("name", ""))
    if name is None:
        problems.append(f"name: {FORMULA_MESSAGE}" if raw.get("name") is FORMULA else "name: expected text")
    elif not name:
        problems.append("name is required")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"name is longer than {MAX_NAME_LENGTH} characters")

    currency = _text(raw.get("currency", ""))
    if currency is None:
        problems.append(f"currency: {FORMULA_MESSAGE}" if raw.get("currency") is FORMULA else "currency: expected text")
    else:
        currency = currency.upper() or (default_currency or "")
        if not currency:
            problems.append("currency is required")
        elif not currencies.is_supported(currency):
            problems.append(f"currency {currency[:10]!r} is not supported")
            currency = None
    unit_price: int | None = None
    price = _decimal(raw.get("price", ""), "price", problems)
    if price is not None and currency:
        try:
            unit_price = currencies.to_minor(price, currency)
        except ValueError:
            digits = currencies.minor_digits(currency)
            allowed = "no decimals" if digits == 0 else f"at most {digits} decimals"
            problems.append(f"price {raw['price'].strip()} has too many decimals: {currency} prices have {allowed}")
        else:
            if unit_price >= MAX_PRICE_MINOR:
                problems.append(f"price {raw['price'].strip()} is too large")

    tax_rate = _decimal(raw.get("tax_rate", ""), "tax_rate", problems)
    if tax_rate is not None:
        if tax_rate > _HUNDRED:
            problems.append(f"tax_rate is a percentage from 0 to 100 (got {tax_rate})")
        elif _decimals(tax_rate) > 4:
            problems.append("tax_rate has more than 4 decimals")

    weight = _decimal(raw.get("weight_g", ""), "weight_g", problems)
    if weight is not None:
        if weight <= 0:
            problems.append("weight_g must be more than 0 grams")
        elif weight > MAX_WEIGHT_G or _decimals(weight) > 2:
            problems.append("weight_g must be grams with at most 2 decimals")

    tolerance: Decimal | None = None
    raw_tolerance = raw.get("weight_tolerance_g", "")
    if raw_tolerance != "" and not (isinstance(raw_tolerance, str) and not raw_tolerance.strip()):
        tolerance = _decimal(raw_tolerance, "weight_tolerance_g", problems)
        if tolerance is not None and (tolerance > MAX_WEIGHT_G or _decimals(tolerance) > 2):
            problems.append("weight_tolerance_g must be grams with at most 2 decimals")

    barcodes: tuple[str, ...] | None = None
    if "barcode" in present:
        text = _text(raw.get("barcode", ""))
        if text is None:
            problems.append(
                f"barcode: {FORMULA_MESSAGE}" if raw.get("barcode") is FORMULA else "barcode: expected text"
            )
        else:
            barcodes, wrong = parse_barcodes(text)
            problems.extend(wrong)

    image_url: str | None = None
    if "image_url" in present:
        text = _text(raw.get("image_url", ""))
        if text is None:
            problems.append(f"image_url: {FORMULA_MESSAGE}" if raw.get("image_url") is FORMULA else "image_url: text")
        else:
            image_url = text
            if text:
                parts = urlsplit(text)
                if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
                    problems.append("image_url must be an http:// or https:// address")
                elif len(text) > MAX_URL_LENGTH:
                    problems.append(f"image_url is longer than {MAX_URL_LENGTH} characters")

    status: str | None = None
    raw_status = raw.get("status", "")
    status_text = _text(raw_status)
    if status_text is None:
        problems.append(f"status: {FORMULA_MESSAGE}" if raw_status is FORMULA else "status: expected text")
    elif status_text:
        status = status_text.lower()
        if status not in STATUSES:
            problems.append(f"status must be {' or '.join(STATUSES)} (got {status_text[:20]!r})")

    min_age = _min_age(raw.get("min_age", ""), problems) if "min_age" in present else None

    if problems:
        return RowError(row, "; ".join(problems))
    assert sku
    assert name
    assert currency
    assert unit_price is not None
    assert tax_rate is not None
    assert weight is not None
    return CatalogRow(
        row=row,
        sku=sku,
        name=name,
        currency=currency,
        unit_price=unit_price,
        tax_rate=tax_rate,
        weight_g=weight,
        weight_tolerance_g=tolerance if tolerance is not None else default_weight_tolerance(weight),
        barcodes=barcodes,
        image_url=image_url,
        status=status,
        min_age=min_age,
    )


def _min_age(value: Any, problems: list[str]) -> int | None:
    """An age limit in whole years from 1 to 150 (18, 21), or 0 for an empty cell: not age-restricted."""
    text = _text(value)
    if text is None:
        problems.append(f"min_age: {FORMULA_MESSAGE}" if value is FORMULA else "min_age: expected a whole number")
        return None
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_AGE:
        problems.append(f"min_age must be a whole number of years from 1 to {MAX_AGE} (got {text[:20]!r})")
        return None
    return int(text)


def check_columns(source: RowSource, *, default_currency: str | None = None) -> None:
    """Raise CatalogFileError when the header lacks a required column (naming every missing one)."""
    if source.columns is None:
        return
    missing = [
        name
        for name in REQUIRED_COLUMNS
        if name not in source.columns and not (name == "currency" and default_currency is not None)
    ]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise CatalogFileError(
            f"The header is missing the column{plural} {', '.join(missing)}. "
            f"Expected columns: {', '.join(COLUMNS)} (the last five are optional).",
            row=1,
        )


def parse_catalog(
    source: RowSource,
    *,
    default_currency: str | None = None,
    on_progress: Callable[[float], None] | None = None,
    max_rows: int = MAX_ROWS,
    stop_after_errors: int | None = None,
) -> ParsedCatalog:
    """Check every row of `source`. Later rows repeating a SKU are errors (the first one stands).

    With `stop_after_errors`, reading stops once that many rows were bad (`stopped_at` says at which row): an
    all-or-nothing import of such a file is refused whatever the rest holds.
    Raises CatalogFileError for problems with the file as a whole.
    """
    if default_currency is not None and not currencies.is_supported(default_currency):
        raise CatalogFileError(f"The currency {default_currency!r} is not supported.")
    check_columns(source, default_currency=default_currency)
    result = ParsedCatalog()
    first_row_of: dict[str, int] = {}
    count = 0
    for row_number, raw in source:
        count += 1
        if count > max_rows:
            raise CatalogFileError(f"The file has more than {max_rows:,} product rows; split it into smaller files.")
        checked = check_row(row_number, raw, columns=source.columns, default_currency=default_currency)
        sku = checked.sku if isinstance(checked, CatalogRow) else _text(raw.get("sku", ""))
        if sku:
            first = first_row_of.setdefault(sku, row_number)
            if first != row_number:
                repeat = f"sku {sku!r} appears again (first on row {first}); each product once per file"
                message = repeat if isinstance(checked, CatalogRow) else f"{checked.message}; {repeat}"
                checked = RowError(row_number, message)
        if isinstance(checked, CatalogRow):
            result.rows.append(checked)
        else:
            result.add_error(checked)
            if stop_after_errors is not None and result.bad_rows >= stop_after_errors:
                result.stopped_at = row_number
                break
        if on_progress is not None and count % 2000 == 0:
            on_progress(source.fraction_read())
    if count == 0:
        raise CatalogFileError("The file has a header but no product rows.")
    return result


def parse_rows(items: Any, *, default_currency: str | None = None) -> ParsedCatalog:
    """Check a JSON array of row objects (a convenience over `JsonSource`)."""
    return parse_catalog(JsonSource(items), default_currency=default_currency)
