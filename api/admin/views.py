"""The ledger's pages in the admin: inventory (venues, sections, event dates, seat blocks),
orders, tickets with their festival passes, Stripe events and the scan log.

Inventory edits reach the hot path as soon as they commit (`live.apply_inventory_change`).
What the ledger owns (codes, QR payloads, totals, Stripe event ids, scans) is read-only:
those views neither create, edit nor delete, and the others edit only the fields listed in
their `form_edit_rules`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from markupsafe import Markup, escape
from sqladmin import ModelView
from sqladmin.filters import BooleanFilter, ForeignKeyFilter, StaticValuesFilter
from sqladmin.pagination import Pagination
from starlette.applications import Starlette
from starlette.requests import Request

from amphi.accessible import normalised
from amphi.keys import BlockKeys
from api.admin.filters import DateValuesFilter
from api.admin.live import apply_inventory_change
from api.admin.money import DollarsField, dollars_column
from api.state import amphi_of
from ledger.models import (
    AmphitheaterTicket,
    EventDate,
    Order,
    OrderStatus,
    Scan,
    SeatBlock,
    Section,
    SectionType,
    StripeEvent,
    Ticket,
    TicketKind,
    TicketStatus,
    TicketTransfer,
    Venue,
)


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, m.value.replace("_", " ")) for m in enum]


def _swatch(model: Any, attribute: Any) -> Markup:
    colour = escape(model.map_color)
    return Markup(
        f'<span style="display:inline-block;width:1em;height:1em;background:{colour};'
        f'border:1px solid #999;vertical-align:middle"></span> {colour}'
    )


class AppView(ModelView):
    """A view that reaches the API's clients (`amphi_of(app)`); `mount` sets `api_app`."""

    api_app: Starlette
    page_size = 50


class InventoryView(AppView):
    async def after_model_change(
        self, data: dict, model: Any, is_created: bool, request: Request
    ) -> None:
        await apply_inventory_change(amphi_of(self.api_app))


class VenueAdmin(InventoryView, model=Venue):
    name, name_plural, icon = "Venue", "Venues", "fa-solid fa-building"
    can_delete = False
    column_list: ClassVar = [Venue.name, Venue.slug, Venue.address, Venue.capacity,
                             Venue.timezone, Venue.is_active]
    column_searchable_list: ClassVar = [Venue.name, Venue.slug, Venue.address]
    column_sortable_list: ClassVar = [Venue.name, Venue.capacity]
    column_filters: ClassVar = [BooleanFilter(Venue.is_active)]
    form_columns: ClassVar = [Venue.slug, Venue.name, Venue.address, Venue.capacity,
                              Venue.timezone, Venue.is_active]
    form_create_rules: ClassVar = ["slug", "name", "address", "capacity", "timezone",
                                   "is_active"]
    # The slug names the venue in URLs; the timezone decides when a show day is over.
    form_edit_rules: ClassVar = ["name", "address", "capacity", "is_active"]


class SectionAdmin(InventoryView, model=Section):
    name, name_plural, icon = "Section", "Sections", "fa-solid fa-layer-group"
    can_delete = False
    column_list: ClassVar = [Section.display_order, Section.name, Section.venue,
                             Section.section_type, Section.capacity, Section.rows,
                             Section.seats_per_row, Section.price_cents, Section.map_color,
                             Section.is_active]
    column_details_list: ClassVar = [*column_list, Section.accessible_seats, Section.slug,
                                     Section.map_coordinates, Section.created_at]
    column_labels: ClassVar = {Section.price_cents: "Price", Section.section_type: "Type",
                               Section.display_order: "Order",
                               Section.map_coordinates: "Map coordinates",
                               Section.accessible_seats: "Accessible seats"}
    column_formatters: ClassVar = {Section.price_cents: dollars_column,
                                   Section.map_color: _swatch}
    column_formatters_detail: ClassVar = column_formatters
    column_searchable_list: ClassVar = [Section.name, Section.slug]
    column_sortable_list: ClassVar = [Section.display_order, Section.name,
                                      Section.price_cents, Section.capacity]
    column_default_sort: ClassVar = [("display_order", False), ("name", False)]
    column_filters: ClassVar = [
        ForeignKeyFilter(Section.venue_id, Venue.name, foreign_model=Venue, title="Venue"),
        StaticValuesFilter(Section.section_type, _choices(SectionType), title="Type"),
        BooleanFilter(Section.is_active),
    ]
    form_columns: ClassVar = [Section.venue, Section.slug, Section.name,
                              Section.section_type, Section.capacity, Section.rows,
                              Section.seats_per_row, Section.price_cents,
                              Section.display_order, Section.map_color,
                              Section.map_coordinates, Section.accessible_seats,
                              Section.is_active]
    form_overrides: ClassVar = {"price_cents": DollarsField}
    form_args: ClassVar = {
        "price_cents": {"label": "Price ($)"},
        "accessible_seats": {
            "label": "Accessible seats",
            "description": "Wheelchair spaces, each with the companion seat beside it: "
                           "space+companion, comma-separated, as X1+X2, X49+X50. Held back "
                           "for fans who ask for them until the rest of a date is sold out.",
        },
    }
    form_create_rules: ClassVar = ["venue", "slug", "name", "section_type", "capacity",
                                   "rows", "seats_per_row", "price_cents", "display_order",
                                   "map_color", "map_coordinates", "accessible_seats",
                                   "is_active"]
    # Slug and geometry are fixed once the section's blocks are loaded and seats sold.
    form_edit_rules: ClassVar = ["name", "price_cents", "display_order", "map_color",
                                 "map_coordinates", "accessible_seats", "is_active"]

    async def on_model_change(self, data: dict, model: Any, is_created: bool,
                              request: Request) -> None:
        """Refuses accessible seats that do not fit the section (the form shows why) and
        saves them written the one way."""
        kind = data.get("section_type", model.section_type)
        data["accessible_seats"] = normalised(
            data.get("accessible_seats") or "",
            reserved=str(getattr(kind, "value", kind)) == SectionType.RESERVED.value,
            rows=data.get("rows", model.rows),
            seats_per_row=data.get("seats_per_row", model.seats_per_row))


class EventDateAdmin(InventoryView, model=EventDate):
    name, name_plural, icon = "Event date", "Event dates", "fa-solid fa-calendar-day"
    can_create = can_delete = False
    column_list: ClassVar = [EventDate.event_date, EventDate.name, EventDate.venue,
                             EventDate.is_active]
    column_searchable_list: ClassVar = [EventDate.name]
    column_sortable_list: ClassVar = [EventDate.event_date]
    column_default_sort: ClassVar = [("event_date", False)]
    column_filters: ClassVar = [BooleanFilter(EventDate.is_active)]
    form_columns: ClassVar = [EventDate.name, EventDate.is_active]
    form_edit_rules: ClassVar = ["name", "is_active"]


class SeatBlockAdmin(InventoryView, model=SeatBlock):
    """Each block with its live counters from Redis: what a fan can hold right now."""

    name, name_plural, icon = "Seat block", "Seat blocks", "fa-solid fa-table-cells"
    can_create = can_delete = False  # blocks come from `amphi setup-venue`, with Redis
    column_list: ClassVar = [SeatBlock.event_date, SeatBlock.section, "price_cents",
                             SeatBlock.price_cents_override, SeatBlock.is_active,
                             "available_seats", "held_seats", "sold_seats",
                             "wheelchair_free", "live_price", "live_on_sale"]
    column_labels: ClassVar = {
        "price_cents": "Price",
        SeatBlock.price_cents_override: "Price override",
        SeatBlock.is_active: "Active",
        "available_seats": "Available",
        "held_seats": "Held",
        "sold_seats": "Sold",
        "wheelchair_free": "Wheelchair spaces free",
        SeatBlock.accessible_released: "Accessible seats on general sale",
        "live_price": "Price in Redis",
        "live_on_sale": "On sale in Redis",
    }
    column_formatters: ClassVar = {
        "price_cents": dollars_column,
        SeatBlock.price_cents_override: dollars_column,
        "live_price": dollars_column,
    }
    column_formatters_detail: ClassVar = column_formatters
    column_searchable_list: ClassVar = ["section.name"]
    column_sortable_list: ClassVar = [SeatBlock.event_date]
    column_default_sort: ClassVar = [("event_date", False)]
    column_filters: ClassVar = [
        DateValuesFilter(SeatBlock.event_date, title="Event date"),
        ForeignKeyFilter(SeatBlock.section_id, Section.name, foreign_model=Section,
                         title="Section"),
        BooleanFilter(SeatBlock.is_active, title="Active"),
    ]
    column_details_list: ClassVar = [*column_list, SeatBlock.accessible_released,
                                     SeatBlock.created_at]
    form_columns: ClassVar = [SeatBlock.price_cents_override, SeatBlock.is_active,
                              SeatBlock.accessible_released]
    form_overrides: ClassVar = {"price_cents_override": DollarsField}
    form_args: ClassVar = {
        "price_cents_override": {
            "label": "Price override ($)",
            "description": "Empty: the section's price.",
        },
        "is_active": {"label": "Active (on sale)"},
        "accessible_released": {
            "label": "Release accessible seats to general sale",
            "description": "The section's free wheelchair spaces and companion seats join "
                           "general sale on this date, for good (they do by themselves "
                           "once the rest is sold out).",
        },
    }
    form_edit_rules: ClassVar = ["price_cents_override", "is_active", "accessible_released"]

    async def _attach_live(self, rows: list[SeatBlock]) -> None:
        """Plain attributes on the loaded rows, which the live columns read."""
        if not rows:
            return
        blocks = [BlockKeys(row.event_date, row.section.slug) for row in rows]
        counts = await amphi_of(self.api_app).holds.availability(blocks)
        for row, live in zip(rows, counts, strict=True):
            values = {
                "available_seats": live.available if live else "not loaded",
                "held_seats": live.held if live else "",
                "sold_seats": live.sold if live else "",
                "wheelchair_free": live.wheelchair_free if live else "",
                "live_price": live.price_cents if live else None,
                "live_on_sale": live.active if live else "",
            }
            for name, value in values.items():
                setattr(row, name, value)

    async def list(self, request: Request) -> Pagination:
        page = await super().list(request)
        await self._attach_live(list(page.rows))
        return page

    async def get_object_for_details(self, request: Request) -> Any:
        block = await super().get_object_for_details(request)
        if block is not None:
            await self._attach_live([block])
        return block


class OrderAdmin(AppView, model=Order):
    name, name_plural, icon = "Order", "Orders", "fa-solid fa-receipt"
    can_create = can_delete = False
    column_list: ClassVar = [Order.order_number, Order.status, Order.buyer_email,
                             Order.section, Order.event_date, Order.quantity,
                             Order.total_cents, Order.demo, Order.created_at]
    column_details_exclude_list: ClassVar = [Order.client_secret]
    column_labels: ClassVar = {Order.total_cents: "Total",
                               Order.unit_price_cents: "Unit price"}
    column_formatters: ClassVar = {Order.total_cents: dollars_column,
                                   Order.unit_price_cents: dollars_column}
    column_formatters_detail: ClassVar = column_formatters
    column_searchable_list: ClassVar = [Order.order_number, Order.buyer_email,
                                        Order.buyer_last_name, Order.payment_intent_id]
    column_sortable_list: ClassVar = [Order.created_at, Order.event_date, Order.total_cents]
    column_default_sort: ClassVar = [("created_at", True)]
    column_filters: ClassVar = [
        StaticValuesFilter(Order.status, _choices(OrderStatus), title="Status"),
        DateValuesFilter(Order.event_date, title="Event date"),
        BooleanFilter(Order.demo),
    ]
    # Only the buyer's contact details: status, money and seats belong to the payment flow.
    form_columns: ClassVar = [Order.buyer_email, Order.buyer_first_name,
                              Order.buyer_last_name]
    form_edit_rules: ClassVar = ["buyer_email", "buyer_first_name", "buyer_last_name"]


def _pass_status(model: Any, attribute: Any) -> str:
    festival_pass = model.festival_day_ticket
    if festival_pass is None:
        return "no pass" if model.includes_festival_access else "not included"
    return festival_pass.status.value


class AmphitheaterTicketAdmin(AppView, model=AmphitheaterTicket):
    name, name_plural, icon = ("Amphitheatre ticket", "Amphitheatre tickets",
                               "fa-solid fa-ticket")
    can_create = can_edit = can_delete = False
    column_list: ClassVar = [AmphitheaterTicket.ticket, AmphitheaterTicket.event_date,
                             AmphitheaterTicket.section, AmphitheaterTicket.row,
                             AmphitheaterTicket.seat, AmphitheaterTicket.price_paid_cents,
                             AmphitheaterTicket.status, AmphitheaterTicket.order,
                             AmphitheaterTicket.includes_festival_access,
                             AmphitheaterTicket.festival_day_ticket, "festival_pass_status"]
    column_details_list: ClassVar = [*column_list, AmphitheaterTicket.seat_index,
                                     AmphitheaterTicket.created_at]
    column_labels: ClassVar = {
        AmphitheaterTicket.ticket: "Ticket code",
        AmphitheaterTicket.price_paid_cents: "Price paid",
        AmphitheaterTicket.includes_festival_access: "Festival access",
        AmphitheaterTicket.festival_day_ticket: "Festival day pass",
        "festival_pass_status": "Pass status",
    }
    column_formatters: ClassVar = {AmphitheaterTicket.price_paid_cents: dollars_column,
                                   "festival_pass_status": _pass_status}
    column_formatters_detail: ClassVar = column_formatters
    column_searchable_list: ClassVar = ["ticket.code", "ticket.owner_email",
                                        "order.order_number"]
    column_sortable_list: ClassVar = [AmphitheaterTicket.event_date,
                                      AmphitheaterTicket.created_at]
    column_default_sort: ClassVar = [("created_at", True)]
    column_filters: ClassVar = [
        DateValuesFilter(AmphitheaterTicket.event_date, title="Event date"),
        ForeignKeyFilter(AmphitheaterTicket.section_id, Section.name, foreign_model=Section,
                         title="Section"),
        StaticValuesFilter(AmphitheaterTicket.status, _choices(TicketStatus), title="Status"),
        BooleanFilter(AmphitheaterTicket.includes_festival_access, title="Festival access"),
    ]


class TicketAdmin(AppView, model=Ticket):
    """Every ticket a gate scans: amphitheatre tickets and the comp festival passes they
    granted (`granted_by`)."""

    name, name_plural, icon = "Ticket", "Tickets and festival passes", "fa-solid fa-qrcode"
    can_create = can_edit = can_delete = False
    column_list: ClassVar = [Ticket.code, Ticket.kind, Ticket.event_date, Ticket.status,
                             Ticket.owner_email, Ticket.price_cents, Ticket.is_comp,
                             Ticket.created_at]
    column_details_exclude_list: ClassVar = [Ticket.ticket_type_id]
    column_labels: ClassVar = {Ticket.price_cents: "Price",
                               Ticket.granted_by_id: "Granted by ticket"}
    column_formatters: ClassVar = {Ticket.price_cents: dollars_column}
    column_formatters_detail: ClassVar = column_formatters
    column_searchable_list: ClassVar = [Ticket.code, Ticket.owner_email]
    column_sortable_list: ClassVar = [Ticket.created_at, Ticket.event_date]
    column_default_sort: ClassVar = [("created_at", True)]
    column_filters: ClassVar = [
        StaticValuesFilter(Ticket.kind, _choices(TicketKind), title="Kind"),
        StaticValuesFilter(Ticket.status, _choices(TicketStatus), title="Status"),
        DateValuesFilter(Ticket.event_date, title="Event date"),
        BooleanFilter(Ticket.is_comp, title="Comp"),
    ]


class StripeEventAdmin(AppView, model=StripeEvent):
    name, name_plural, icon = "Stripe event", "Stripe events", "fa-brands fa-stripe"
    can_create = can_edit = can_delete = False
    column_list: ClassVar = [StripeEvent.id, StripeEvent.event_type,
                             StripeEvent.payment_intent_id, StripeEvent.order_id,
                             StripeEvent.processed_at]
    column_searchable_list: ClassVar = [StripeEvent.id, StripeEvent.payment_intent_id]
    column_sortable_list: ClassVar = [StripeEvent.processed_at]
    column_default_sort: ClassVar = [("processed_at", True)]
    column_filters: ClassVar = [StaticValuesFilter(StripeEvent.event_type, [
        ("payment_intent.succeeded", "payment_intent.succeeded"),
        ("payment_intent.payment_failed", "payment_intent.payment_failed"),
        ("payment_intent.canceled", "payment_intent.canceled"),
    ], title="Type")]


class ScanAdmin(AppView, model=Scan):
    name, name_plural, icon = "Scan", "Scan log", "fa-solid fa-barcode"
    can_create = can_edit = can_delete = False
    column_list: ClassVar = [Scan.scanned_at, Scan.gate, Scan.code, Scan.admitted,
                             Scan.result, Scan.reason, Scan.festival_access_granted,
                             Scan.device_id, Scan.source]
    column_searchable_list: ClassVar = [Scan.code, Scan.device_id, Scan.reason]
    column_sortable_list: ClassVar = [Scan.scanned_at]
    column_default_sort: ClassVar = [("scanned_at", True)]
    column_filters: ClassVar = [
        StaticValuesFilter(Scan.gate, [("amphitheater", "amphitheater"),
                                       ("festival", "festival")], title="Gate"),
        BooleanFilter(Scan.admitted),
        DateValuesFilter(Scan.venue_date, title="Venue date"),
        StaticValuesFilter(Scan.source, [("online", "online"), ("offline", "offline")],
                           title="Source"),
    ]


class TicketTransferAdmin(AppView, model=TicketTransfer):
    """Every ticket that changed hands: the codes it had (no gate opens to them now), the
    version it got, who gave it and to whom."""

    name, name_plural, icon = "Transfer", "Ticket transfers", "fa-solid fa-right-left"
    can_create = can_edit = can_delete = False
    column_list: ClassVar = [TicketTransfer.created_at, TicketTransfer.event_date,
                             TicketTransfer.old_code, TicketTransfer.ticket,
                             TicketTransfer.version, TicketTransfer.from_email,
                             TicketTransfer.to_email, TicketTransfer.email_sent_at]
    column_labels: ClassVar = {TicketTransfer.old_code: "Code given away",
                               TicketTransfer.ticket: "Ticket (new code)"}
    column_searchable_list: ClassVar = [TicketTransfer.old_code, TicketTransfer.old_pass_code,
                                        TicketTransfer.from_email, TicketTransfer.to_email]
    column_sortable_list: ClassVar = [TicketTransfer.created_at]
    column_default_sort: ClassVar = [("created_at", True)]
    column_filters: ClassVar = [DateValuesFilter(TicketTransfer.event_date, title="Event date")]


MODEL_VIEWS: list[type[AppView]] = [
    VenueAdmin, SectionAdmin, EventDateAdmin, SeatBlockAdmin, OrderAdmin,
    AmphitheaterTicketAdmin, TicketAdmin, TicketTransferAdmin, StripeEventAdmin, ScanAdmin,
]
