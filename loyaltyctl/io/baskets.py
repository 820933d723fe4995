"""Baskets as operators give them: `--line SKU:QTY:PRICE[:DISCOUNT]`, `--discount
[CATEGORY:]AMOUNT`, a JSON basket (a file, stdin, or an import's `lines` column) and the
rows of a `purchase_lines` CSV. Errors name the field they are about (`lines`, `discount`)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from ..core.commands import Basket, Discount, Line
from ..core.values import parse_amount
from ..errors import InputError

MAX_TEXT = 64
MAX_BASKET_BYTES = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def label(value, what: str, field: str = "lines") -> str:
    """A sku or category: non-empty text, at most 64 characters, no control characters."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not text:
        raise InputError(f"{what} must be non-empty text", field=field)
    if len(text) > MAX_TEXT or _CONTROL.search(text):
        raise InputError(f"{what} {text[:MAX_TEXT]!r}... is not a valid {what}" if len(text) > MAX_TEXT
                         else f"{what} {text!r} contains control characters", field=field)
    return text


def quantity(value, field: str = "lines") -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,7}", text) or int(text) == 0:
        raise InputError(f"quantity {text[:20]!r} is not a whole number of items (1 or more)", field=field)
    return int(text)


def money_value(value, what: str, field: str = "lines") -> Decimal:
    """A price or discount: an exact decimal (JSON numbers are read exactly, never as floats)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise InputError(f"{what} must be a decimal amount (e.g. \"3.40\")", field=field)
    try:
        return parse_amount(str(value), field, allow_zero=True)
    except InputError as exc:
        raise InputError(f"{what}: {exc.detail}", field=field) from None


def parse_line(text: str) -> Line:
    """`SKU:QTY:PRICE` or `SKU:QTY:PRICE:DISCOUNT` (a sku with ':' needs a JSON basket)."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise InputError(f"{text[:MAX_TEXT]!r} is not SKU:QTY:PRICE[:DISCOUNT] (e.g. LATTE:2:3.40)", field="lines")
    discount = money_value(parts[3], "discount") if len(parts) == 4 else Decimal(0)
    return Line(label(parts[0], "sku"), quantity(parts[1]), money_value(parts[2], "unit_price"), discount)


def parse_discount(text: str) -> Discount:
    """`AMOUNT` (order-wide) or `CATEGORY:AMOUNT` (on that category's lines)."""
    category, sep, amount = text.rpartition(":")
    value = money_value(amount, "discount", "discount")
    if value == 0:
        raise InputError("a discount must be greater than zero", field="discount")
    return Discount(value, label(category, "category", "discount") if sep else None)


def parse_refund_line(text: str) -> tuple[str, int]:
    """`SKU` (one item) or `SKU:QTY`."""
    sku, sep, n = text.rpartition(":")
    if not sep:
        return label(text, "sku"), 1
    return label(sku, "sku"), quantity(n)


def refund_lines(texts) -> tuple[tuple[str, int], ...]:
    return tuple(parse_refund_line(t) for t in texts)


def basket_json(text: str, source: str = "basket", field: str = "basket") -> Basket:
    """A basket from JSON: {"lines": [...], "discounts": [...]} or just the list of lines; a
    line is {"sku", "quantity", "unit_price", optional "discount" and "category"}, a discount
    {"amount", optional "category"}."""
    if len(text) > MAX_BASKET_BYTES:
        raise InputError(f"{source}: larger than {MAX_BASKET_BYTES // 1024} KiB", field=field)
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=int)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not valid JSON ({str(exc)[:80]})", field=field) from None
    if isinstance(data, list):
        data = {"lines": data}
    if not isinstance(data, dict) or set(data) - {"lines", "discounts"}:
        raise InputError(f"{source}: expected a list of lines or {{\"lines\": [...], \"discounts\": [...]}}",
                         field=field)
    lines, discounts = data.get("lines"), data.get("discounts") or []
    if not isinstance(lines, list) or not isinstance(discounts, list):
        raise InputError(f"{source}: lines and discounts must be lists", field=field)
    return Basket(tuple(_json_line(x, i, source, field) for i, x in enumerate(lines, start=1)),
                  tuple(_json_discount(x, source, field) for x in discounts))


def _json_line(item, i: int, source: str, field: str) -> Line:
    keys = {"sku", "quantity", "unit_price", "discount", "category"}
    if not isinstance(item, dict) or not {"sku", "quantity", "unit_price"} <= set(item) or set(item) - keys:
        raise InputError(f"{source}: line {i} needs sku, quantity and unit_price (and may have discount, category)",
                         field=field)
    try:
        category = item.get("category")
        return Line(label(item["sku"], "sku"), quantity(item["quantity"]), money_value(item["unit_price"], "unit_price"),
                    money_value(item.get("discount", "0"), "discount"),
                    None if category in (None, "") else label(category, "category"))
    except InputError as exc:
        raise InputError(f"{source}: line {i}: {exc.detail}", field=field) from None


def _json_discount(item, source: str, field: str) -> Discount:
    if not isinstance(item, dict) or "amount" not in item or set(item) - {"amount", "category"}:
        raise InputError(f"{source}: a discount is {{\"amount\": ..., \"category\": ... (optional)}}", field=field)
    value = money_value(item["amount"], "discount", "discount")
    category = item.get("category")
    return Discount(value, None if category in (None, "") else label(category, "category", "discount"))


def refund_json(text: str) -> tuple[tuple[str, int], ...]:
    """The lines a refund names, as JSON: [{"sku": ..., "quantity": ...}, ...]."""
    try:
        data = json.loads(text[:MAX_BASKET_BYTES], parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not valid JSON ({str(exc)[:80]})", field="lines") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) and set(x) <= {"sku", "quantity"} and "sku" in x
                                             for x in data):
        raise InputError('a refund\'s lines are [{"sku": ..., "quantity": ...}, ...]', field="lines")
    return tuple((label(x["sku"], "sku"), quantity(x.get("quantity", 1))) for x in data)


def read_basket(path: str) -> Basket:
    """A JSON basket from a file, or from stdin (`-`)."""
    import sys

    if path == "-":
        return basket_json(sys.stdin.read(MAX_BASKET_BYTES + 1), "<stdin>")
    try:
        with open(path, encoding="utf-8") as f:
            return basket_json(f.read(MAX_BASKET_BYTES + 1), path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", field="basket") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text", field="basket") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", field="basket") from None


def with_discounts(basket: Basket, discounts) -> Basket:
    return Basket(basket.lines, basket.discounts + tuple(discounts))
