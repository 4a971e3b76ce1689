#!/usr/bin/env python3
"""Demo helper: drives the Planexpo simulator, reads both simulators and the pxsync status,
and prints what inwink holds. Standard library only. Prints company names (synthetic data),
never contacts."""
import json, os, subprocess, sys, time, urllib.request

PX, IW, PXSYNC, EVENT = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
MAPPED = {}
for line in open(sys.argv[5], encoding="utf-8").read().splitlines()[1:]:
    cols = line.split(",")
    if len(cols) == 4 and cols[3]:
        MAPPED[cols[1]] = (cols[3], cols[0])


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def orders():
    return {o["id"]: o for o in http("GET", PX + "/_sim/state")["orders"]}


def inwink():
    return http("GET", IW + "/_sim/state")


def status():
    out = subprocess.run([PXSYNC, "status", "--event", EVENT, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def wait_converged(timeout=60):
    """Until the emitter has nothing pending and the projector has seen every revision."""
    deadline = time.time() + timeout
    run_pid = int(os.environ.get("PXSYNC_RUN_PID", "0"))
    while time.time() < deadline:
        if run_pid:
            try:
                os.kill(run_pid, 0)
            except OSError:
                raise SystemExit("demo: pxsync run has stopped")
        s = status()
        q = s["queue"]
        if s["orders"] > 0 and q.get("pending", 0) == 0 and q.get("waiting", 0) == 0 and s["events_logged"] > 0:
            time.sleep(0.6)
            s2 = status()
            if s2["events_logged"] == s["events_logged"] and s2["queue"].get("pending", 0) == 0:
                return s2
        time.sleep(0.3)
    raise SystemExit("demo: inwink did not converge within %ss" % timeout)


def partner(state, order_id):
    return next((p for p in state["partners"] if p.get("planexpo_order_id") == order_id), None)


def show_partner(state, order_id, label):
    p = partner(state, order_id)
    if p is None:
        print(f"   {label}: no partner on inwink")
        return
    names = {iw: name for (iw, name) in MAPPED.values()}
    products = ", ".join(f"{names.get(k, k)} ×{v}" for k, v in sorted(p.get("products", {}).items())) or "no products"
    parent = f", co-exhibitor of {p['affiliatedToId'][:8]}…" if p.get("affiliatedToId") else ""
    print(f"   {label}: {p['name']} [{p['status']}] stand {p.get('emplacement') or '(not placed)'}{parent}: {products}")


def overview():
    s, st = status(), inwink()
    print(f"   inwink holds {len(st['partners'])} partners "
          f"({sum(1 for p in st['partners'] if p['status'] == 'Published')} published), "
          f"{len(st['participants'])} participants, {len(st['team_members'])} team links; "
          f"decrease attempts received by inwink: {st['quantity_decrease_attempts']}")
    for d in s["refused_decreases"]:
        print(f"   refused decrease: {d['order_id']} product {MAPPED_NAME(d['product_id'])}: inwink keeps {d['floor']}, Planexpo wants {d['desired']}")
    print(f"   queue: {s['queue']}  parked: {len(s['parked'])}  rejected units: {len(s['rejected'])}  unmapped products: {len(s['unmapped'])}")


def MAPPED_NAME(iw):
    for (i, name) in MAPPED.values():
        if i == iw:
            return name
    return iw


def put(order):
    http("PUT", f"{PX}/_sim/orders/{order['id']}", order)


def mapped_line(o):
    return next((l for l in o.get("lines") or [] if l.get("product_id") in MAPPED), None)


def scenario(smoke):
    all_orders = orders()
    validated = sorted(i for i, o in all_orders.items() if o.get("status") == "validated" and not o.get("parent_order_id"))
    submitted = sorted(i for i, o in all_orders.items() if o.get("status") == "submitted")
    with_line = [i for i in validated if mapped_line(all_orders[i])]
    picks = {"validate": submitted[0], "quantity": with_line[0], "parent": validated[1], "cancel": validated[2]}
    if picks["parent"] == picks["quantity"] or picks["cancel"] == picks["quantity"]:
        picks["parent"], picks["cancel"] = validated[3], validated[4]
    steps = []

    def step(title, change, order_id):
        print(f"\n== {title}")
        change()
        wait_converged()
        show_partner(inwink(), order_id, order_id)
        overview()
        steps.append(title)

    o = dict(all_orders[picks["validate"]])
    o["status"] = "validated"
    step(f"Planexpo validates order {o['id']}", lambda: put(o), o["id"])

    q = json.loads(json.dumps(all_orders[picks["quantity"]]))
    line = mapped_line(q)
    product = line["product_id"]
    first = line["quantity"]
    line["quantity"] = first + 5
    step(f"The exhibitor of {q['id']} raises {MAPPED[product][1]} from {first} to {first + 5}", lambda: put(q), q["id"])
    lowered = json.loads(json.dumps(q))
    mapped_line(lowered)["quantity"] = 1
    step(f"...then lowers it to 1 (inwink never lowers: refused and recorded)", lambda: put(lowered), q["id"])

    parent = all_orders[picks["parent"]]
    child = json.loads(json.dumps(parent))
    child.update({"id": "ord_COEX1", "public_id": "SX26-9001", "parent_order_id": parent["id"]})
    child["company"]["name"] = "Co-exposant " + parent["company"]["name"]
    child["booking_contact"]["email"] = "co-exposant@demo.example"
    child["lines"] = [{"product_id": "opt_wifi", "product_name": "Wi-Fi stand", "quantity": 1}]
    step(f"A co-exhibitor of {parent['id']} is added and validated", lambda: put(child), "ord_COEX1")

    c = dict(all_orders[picks["cancel"]])
    c["status"] = "cancelled"
    step(f"Order {c['id']} is cancelled (its partner is unpublished, nothing is deleted)", lambda: put(c), c["id"])

    if smoke:
        st, s = inwink(), status()
        problems = []
        if (partner(st, picks["validate"]) or {}).get("status") != "Published":
            problems.append("the validated order has no published partner")
        iw_product = MAPPED[product][0]
        held = (partner(st, q["id"]) or {}).get("products", {}).get(iw_product)
        if held != first + 5:
            problems.append(f"the raised quantity is {held}, expected {first + 5}")
        if not any(d["order_id"] == q["id"] and d["desired"] == 1 for d in s["refused_decreases"]):
            problems.append("the refused decrease is not recorded")
        ch, pa = partner(st, "ord_COEX1"), partner(st, parent["id"])
        if not ch or not pa or ch.get("affiliatedToId") != pa["id"]:
            problems.append("the co-exhibitor does not point to its parent's partner")
        if (partner(st, c["id"]) or {}).get("status") != "Draft":
            problems.append("the cancelled order's partner is not Draft")
        if st["quantity_decrease_attempts"] != 0:
            problems.append("inwink received a decrease attempt")
        if problems:
            print("\ndemo-smoke FAILED:\n - " + "\n - ".join(problems))
            sys.exit(1)
        print(f"\ndemo-smoke: {len(steps)} passed, 0 failed")


if __name__ == "__main__":
    cmd = sys.argv[6]
    if cmd == "projected":
        deadline = time.time() + 120
        expected = len(orders())
        while status()["orders"] < expected:
            if time.time() > deadline:
                raise SystemExit("demo: the orders were not projected")
            time.sleep(0.3)
        print(f"   {expected} orders observed, logged and projected")
    elif cmd == "wait":
        wait_converged(120)
        overview()
    elif cmd == "scenario":
        scenario(smoke="--smoke" in sys.argv)
