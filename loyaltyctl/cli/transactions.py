"""Transactions: earn, redeem, refund, adjust."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from . import parse
from .common import (AtOpt, Format, FormatOpt, MemberArg, ProgramOpt, RewardOpt, TxnArg, TxnOpt, complete_events,
                     complete_partners, db, default_program, flat, reader)

PANEL = "Transactions"
RESULT_FIELDS = ["status", "txn_id", "member_id", "program", "kind", "rule", "amount", "points", "paid_points",
                 "returned_points", "effective_at", "balance", "tier", "upgraded_to"]


def _show(result: dict, fmt: Format) -> None:
    from .. import render

    if fmt is Format.table:
        verb = "already recorded" if result["status"] == "duplicate" else "recorded"
        line = (f"{result['txn_id']} {verb}: {result['points']:+d} points for {result['member_id']} "
                f"({result['program']})")
        if result.get("paid_points"):
            line += f", paid {result['paid_points']} points"
        if result.get("returned_points"):
            line += f", {result['returned_points']} paid points given back"
        line += f"; balance {result['balance']}"
        if result.get("tier"):
            line += f", tier {result['tier']}"
        if result.get("upgraded_to"):
            line += f" (upgraded to {result['upgraded_to']})"
        print(line)
    else:
        render.record(result, fmt=fmt.value, fields=[f for f in RESULT_FIELDS if f in result])


def explain(
    ctx: typer.Context,
    txn_id: TxnArg,
    fmt: FormatOpt = Format.table,
):
    """Explain one transaction: rule, version, rate, tier, exact arithmetic, lots, later effects.

    Example: loyaltyctl explain POS-1001
    """
    from .. import render
    from ..app import explain as explaining

    result = explaining.explain(reader(ctx), txn_id)
    if fmt is Format.table:
        head = {k: result.get(k) for k in ("txn_id", "member_id", "program", "program_version", "kind", "rule",
                                             "amount", "rate", "tier", "multiplier", "points", "effective_at",
                                             "recorded_at")}
        render.record(head, title=f"Transaction {txn_id}")
        for line in result["explanation"]:
            print(f"  {line}")
    else:
        render.record(result if fmt is Format.json else flat(result), fmt=fmt.value)


def register(app: typer.Typer) -> None:
    app.command("explain", rich_help_panel=PANEL)(explain)
    @app.command(rich_help_panel=PANEL)
    def earn(
        ctx: typer.Context,
        member_id: MemberArg,
        amount: Annotated[Optional[str], typer.Option("--amount", help="Purchase amount (exact decimal).",
                                                      callback=parse.amount)] = None,
        event: Annotated[Optional[str], typer.Option("--event", help="Engagement action named in the program.",
                                                     autocompletion=complete_events, callback=parse.text("event"))] = None,
        partner: Annotated[Optional[str], typer.Option("--partner", help="Purchase made at this partner.",
                                                       autocompletion=complete_partners, callback=parse.text("partner"))] = None,
        line: Annotated[Optional[List[str]], typer.Option("--line", metavar="SKU:QTY:PRICE[:DISCOUNT]", help="A purchase line (repeat for each); the amount is their total.",
                                                          callback=parse.lines)] = None,
        basket: Annotated[Optional[str], typer.Option("--basket", metavar="<file>", help="The lines as JSON (- reads stdin): [{\"sku\", \"quantity\", \"unit_price\", \"discount\", \"category\"}, ...].")] = None,
        discount: Annotated[Optional[List[str]], typer.Option("--discount", metavar="[CATEGORY:]AMOUNT", help="A discount on the whole order, or on one category's lines (repeatable).",
                                                              callback=parse.discounts)] = None,
        pay_points: Annotated[Optional[str], typer.Option("--pay-points", metavar="<int>", help="Points paying part of the order (at the program's point value).",
                                                          callback=parse.points)] = None,
        no_points: Annotated[bool, typer.Option("--no-points", help="Record the purchase for tiers and analytics without earning points.")] = False,
        program: ProgramOpt = None,
        txn: TxnOpt = None,
        at: AtOpt = None,
        fmt: FormatOpt = Format.table,
    ):
        """Credit points for a purchase (--amount, or its --line s) or an engagement action (--event).

        A basket earns per line (see `program show`); --pay-points pays part of the order
        with points in the same transaction.

        Example: loyaltyctl earn M00001 --line LATTE:2:3.40 --line CROISSANT:1:2.60 --txn POS-1001
        """
        from ..app import ledger

        database = db(ctx)
        order = ledger.Order(line or (), basket, discount or (), pay_points, no_points)
        _show(ledger.earn(database, member_id, program_code=default_program(program, database), amount=amount,
                           partner=partner, event=event, txn=txn, at=at, order=order).as_dict(), fmt)

    @app.command(rich_help_panel=PANEL)
    def redeem(
        ctx: typer.Context,
        member_id: MemberArg,
        points: Annotated[Optional[str], typer.Option("--points", help="Points to redeem (with a per-point --reward: the most to spend).", metavar="<int>",
                                                      callback=parse.points)] = None,
        reward: RewardOpt = None,
        program: ProgramOpt = None,
        txn: TxnOpt = None,
        at: AtOpt = None,
        fmt: FormatOpt = Format.table,
    ):
        """Spend points on a reward or a number of points; refused if the balance is short.

        A per-point reward (required_points, value_per_point) takes the largest multiple
        of its required_points the member can afford, or --points allows.

        Example: loyaltyctl redeem M00001 --reward free_coffee
        """
        from ..app import ledger

        database = db(ctx)
        _show(ledger.redeem(database, member_id, program_code=default_program(program, database), points=points,
                             reward=reward, txn=txn, at=at).as_dict(), fmt)

    @app.command(rich_help_panel=PANEL)
    def refund(
        ctx: typer.Context,
        ref_txn: Annotated[str, typer.Argument(metavar="TXN_ID", help="The purchase or redemption to refund.", callback=parse.text("ref_txn_id"))],
        amount: Annotated[Optional[str], typer.Option("--amount", help="Part of the purchase refunded (default: all that is left).",
                                                      callback=parse.amount)] = None,
        line: Annotated[Optional[List[str]], typer.Option("--line", metavar="SKU[:QTY]", help="Lines of a basket purchase refunded (repeatable; default: all that is left).",
                                                          callback=parse.refund_lines)] = None,
        txn: TxnOpt = None,
        at: AtOpt = None,
        fmt: FormatOpt = Format.table,
    ):
        """Claw back a purchase's points, or cancel a redemption.

        A purchase nets what its remaining amount would earn at the same rate; a
        basket's refunded lines give back exactly the points they earned; points that
        paid part of the order come back in the share refunded. A claw-back may leave
        the member owing points. A cancelled redemption puts its points back in the
        lots they came from, unless those lots have expired.

        Example: loyaltyctl refund POS-1001 --line CROISSANT:1
        """
        from ..app import ledger

        _show(ledger.refund(db(ctx), ref_txn, amount=amount, txn=txn, at=at, lines=line or ()).as_dict(), fmt)

    @app.command(rich_help_panel=PANEL)
    def adjust(
        ctx: typer.Context,
        member_id: MemberArg,
        points: Annotated[str, typer.Option("--points", help="Points to add (negative to remove: --points=-50).",
                                            metavar="<int>", callback=parse.signed_points)],
        reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).", callback=parse.text("reason"))],
        expires_at: Annotated[Optional[str], typer.Option("--expires-at", help="Points added expire then, not by the program's rule (ISO-8601).",
                                                          callback=parse.moment)] = None,
        never_expires: Annotated[bool, typer.Option("--never-expires", help="Points added never expire (not even for inactivity).")] = False,
        program: ProgramOpt = None,
        txn: TxnOpt = None,
        at: AtOpt = None,
        fmt: FormatOpt = Format.table,
    ):
        """Add or remove points by hand, with a reason (goodwill, corrections).

        Points added expire by the program's rule unless --expires-at or --never-expires says otherwise.

        Example: loyaltyctl adjust M00001 --points=-50 --reason "double scan"
        """
        from ..app import ledger

        database = db(ctx)
        _show(ledger.adjust(database, member_id, points=points, reason=reason,
                             program_code=default_program(program, database), txn=txn, at=at,
                             expires_at=expires_at, never_expires=never_expires).as_dict(), fmt)
