#!/usr/bin/env python3
"""Generate realistic agribusiness order events as newline-delimited JSON.

Each order is created, then changes status (paid, shipped, delivered or
cancelled) with later events; a share of events arrive late (out of order)
or twice (duplicates), and a few records are invalid on purpose when
--invalid-rate is set (silver drops them), cut short so that they are not
JSON at all when --rescued-rate is set (bronze rescues them), or valid but
odd when --odd-rate is set (an unknown category or a discount above 0.5:
silver keeps them, its warn expectations count them).  Deterministic for a
given --seed.

    generate_orders.py --events 1000000 --files 1000 --out DIR [--prefix orders-]
                       [--customers-out DIR2 [--customer-prefix customers-]]

Writes DIR/<prefix>NNNNNN.json files of about events/files records each and
prints the number of events written.

With --customers-out, it also writes a second stream, customer events, into
DIR2/<customer-prefix>NNNNNN.json (as many files, at most, as --files): one
creation per customer the orders name (sequence = customer_id, the same
record whichever run writes it, so silver's dedup on event_id drops it when
it comes again), and for --customer-change-rate of them a later change, a
region move or a rename (sequence = 100000 + the sequence of an order event
of this run, so that changes of later runs, whose --first-sequence is
higher, come after).  The late and duplicate rates apply to them too.  The
order files are the same with or without --customers-out.
"""
import argparse
import json
import os
import random
from datetime import datetime, timedelta, timezone

PRODUCTS = [
    ("seed-corn-hybrid-80d", "seeds", 189.50),
    ("seed-soy-rr2", "seeds", 62.00),
    ("seed-wheat-winter", "seeds", 41.25),
    ("fert-urea-46", "fertilizer", 540.00),
    ("fert-npk-15-15-15", "fertilizer", 610.00),
    ("fert-potash-60", "fertilizer", 455.00),
    ("herb-glyphosate-20l", "crop-protection", 129.90),
    ("fung-azoxystrobin-5l", "crop-protection", 238.00),
    ("feed-cattle-18", "animal-feed", 21.40),
    ("feed-poultry-starter", "animal-feed", 24.80),
    ("irr-drip-tape-1km", "irrigation", 315.00),
    ("irr-valve-2in", "irrigation", 48.75),
]
STATUSES = ["paid", "shipped", "delivered"]
REGIONS = ["midwest", "plains", "south", "west", "northeast"]
SEGMENTS = ["family-farm", "cooperative", "agribusiness", "reseller"]
NAME_WORDS = (["Prairie", "Cedar", "Willow", "Harvest", "Golden", "Riverbend", "Oak",
               "Sunrise", "Meadow", "Stone", "Clearwater", "Red Barn"],
              ["Farms", "Acres", "Grain Co", "Cattle Co", "Growers", "Orchards",
               "Dairy", "Ranch"])
CUSTOMER_EPOCH = datetime(2026, 6, 1, tzinfo=timezone.utc)
CHANGE_SEQUENCE_BASE = 100000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prefix", default="orders-")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--late-rate", type=float, default=0.05)
    parser.add_argument("--duplicate-rate", type=float, default=0.0)
    parser.add_argument("--invalid-rate", type=float, default=0.0)
    parser.add_argument("--first-order", type=int, default=1)
    parser.add_argument("--first-sequence", type=int, default=0)
    parser.add_argument("--start", default="2026-09-01T00:00:00+00:00")
    parser.add_argument("--discount-rate", type=float, default=0.0,
                        help="share of events carrying a new 'discount' field")
    parser.add_argument("--rescued-rate", type=float, default=0.0,
                        help="share of lines cut short (not JSON)")
    parser.add_argument("--odd-rate", type=float, default=0.0,
                        help="share of valid events with an unknown category or a discount above 0.5")
    parser.add_argument("--customers-out",
                        help="also write customer events (creations, moves, renames) here")
    parser.add_argument("--customer-prefix", default="customers-")
    parser.add_argument("--customer-change-rate", type=float, default=0.1,
                        help="share of the customers named by the orders that change")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    start = datetime.fromisoformat(args.start)
    per_file = max(1, -(-args.events // args.files))

    events = []
    order_id = args.first_order
    sequence = args.first_sequence
    clock = start
    while len(events) < args.events:
        product, category, price = rng.choice(PRODUCTS)
        customer = rng.randint(1, 20000)
        quantity = rng.randint(1, 40)
        clock += timedelta(seconds=rng.randint(1, 30))
        steps = ["created"] + STATUSES[: rng.randint(0, 3)]
        if rng.random() < 0.04:
            steps.append("cancelled")
        ts = clock
        for status in steps:
            sequence += 1
            ts += timedelta(minutes=rng.randint(5, 600))
            event = {
                "event_id": f"ev-{sequence:09d}",
                "order_id": order_id,
                "customer_id": customer,
                "product": product,
                "category": category,
                "quantity": quantity,
                "unit_price": price,
                "status": status,
                "operation": "DELETE" if status == "cancelled" else "UPSERT",
                "event_ts": ts.isoformat().replace("+00:00", "Z"),
                "sequence": sequence,
            }
            if args.discount_rate and rng.random() < args.discount_rate:
                event["discount"] = round(rng.choice([0.05, 0.1, 0.15]), 2)
            events.append(event)
            if len(events) >= args.events:
                break
        order_id += 1

    # late arrivals: swap some events with a later position
    for index in range(len(events)):
        if rng.random() < args.late_rate:
            other = min(len(events) - 1, index + rng.randint(1, 2000))
            events[index], events[other] = events[other], events[index]

    written = 0
    lines = []
    for event in events:
        line = json.dumps(event, separators=(", ", ": "))
        if args.invalid_rate and rng.random() < args.invalid_rate:
            kind = rng.randint(0, 3)
            if kind == 0:
                event = dict(event, quantity="lots")
            elif kind == 1:
                event = dict(event, quantity=-event["quantity"])
            elif kind == 2:
                event = {k: v for k, v in event.items() if k != "order_id"}
            else:
                event = dict(event, event_ts="not-a-time")
            line = json.dumps(event, separators=(", ", ": "))
        if args.odd_rate and rng.random() < args.odd_rate:
            if rng.randint(0, 1) == 0:
                event = dict(event, category="machinery")
            else:
                event = dict(event, discount=0.75)
            line = json.dumps(event, separators=(", ", ": "))
        if args.rescued_rate and rng.random() < args.rescued_rate:
            line = line[: len(line) // 2]
        lines.append(line)
        if args.duplicate_rate and rng.random() < args.duplicate_rate:
            lines.append(line)
    for file_index in range(args.files):
        chunk = lines[file_index * per_file:(file_index + 1) * per_file]
        if not chunk:
            break
        path = os.path.join(args.out, f"{args.prefix}{file_index + 1:06d}.json")
        with open(path, "w") as handle:
            handle.write("\n".join(chunk) + "\n")
        written += len(chunk)
    if args.customers_out:
        write_customers(args, events)
    print(written)


def customer_record(customer_id):
    """A customer's name, region and segment as created: the same in every run."""
    rng = random.Random(customer_id)
    name = f"{rng.choice(NAME_WORDS[0])} {rng.choice(NAME_WORDS[1])}"
    return name, rng.choice(REGIONS), rng.choice(SEGMENTS)


def customer_event(customer_id, name, region, segment, ts, sequence):
    return {
        "event_id": f"cu-{customer_id:06d}-{sequence}",
        "customer_id": customer_id,
        "name": name,
        "region": region,
        "segment": segment,
        "operation": "UPSERT",
        "event_ts": ts.isoformat().replace("+00:00", "Z"),
        "sequence": sequence,
    }


def write_customers(args, events):
    """The customer events of the customers the order events name.

    Uses a random generator of its own, so that the order files do not
    depend on whether customer events are written."""
    rng = random.Random(f"customers-{args.seed}")
    os.makedirs(args.customers_out, exist_ok=True)
    seen = sorted(set(e["customer_id"] for e in events))
    customers = []
    for customer_id in seen:
        name, region, segment = customer_record(customer_id)
        customers.append(customer_event(customer_id, name, region, segment,
                                        CUSTOMER_EPOCH + timedelta(minutes=5 * customer_id),
                                        customer_id))
    changes = []
    for customer_id in seen:
        if rng.random() >= args.customer_change_rate:
            continue
        name, region, segment = customer_record(customer_id)
        after = rng.choice(events)
        ts = datetime.fromisoformat(after["event_ts"].replace("Z", "+00:00"))
        if rng.random() < 0.7:
            region = rng.choice([r for r in REGIONS if r != region])
        else:
            name = f"{rng.choice(NAME_WORDS[0])} {rng.choice(NAME_WORDS[1])} {rng.randint(2, 9)}"
        changes.append(customer_event(customer_id, name, region, segment,
                                      ts + timedelta(minutes=1),
                                      CHANGE_SEQUENCE_BASE + after["sequence"]))
    changes.sort(key=lambda e: e["sequence"])
    stream = customers + changes
    # late arrivals and duplicates, as for the orders
    for index in range(len(stream)):
        if rng.random() < args.late_rate:
            other = min(len(stream) - 1, index + rng.randint(1, 200))
            stream[index], stream[other] = stream[other], stream[index]
    lines = []
    for event in stream:
        lines.append(json.dumps(event, separators=(", ", ": ")))
        if args.duplicate_rate and rng.random() < args.duplicate_rate:
            lines.append(lines[-1])
    per_file = max(1, -(-len(lines) // args.files))
    for file_index in range(args.files):
        chunk = lines[file_index * per_file:(file_index + 1) * per_file]
        if not chunk:
            break
        path = os.path.join(args.customers_out,
                            f"{args.customer_prefix}{file_index + 1:06d}.json")
        with open(path, "w") as handle:
            handle.write("\n".join(chunk) + "\n")


if __name__ == "__main__":
    main()
