"""The handbook's facts and section texts (`handbook/`), used by `data/generate.py`.

Plain data (plus the small record type the table is built from), no generator logic. Which
generator step reads what:

- `Fact`, `F(...)`, `FACTS`: every checkable value with its v1 (and, for changed facts, v2)
  wording and the questions that ask for it; `make_handbook` turns them into the
  train/test/changed question rows (`question_row`).
- `SECTIONS`: the section texts; `handbook_sections` fills in each `{section.fact}` from
  `FACTS`, for handbook v1 and v2.
- `HANDBOOK_INTRO`: the line under the title, per version (`handbook_markdown`).

The order of `FACTS` fixes the question ids and the random draws that pick held-out questions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One checkable fact in the handbook, with the questions that ask for it."""

    id: str                          # "<section>.<name>"
    value: str                       # as written in the handbook (v1)
    accept: tuple[str, ...]          # any of these in an answer means correct (all appear in v1)
    questions: tuple[str, ...]       # 3 paraphrases for a seen fact, 1-2 for an unseen one
    answer: str                      # the reference answer; "{v}" is the value
    seen: bool = True                # seen facts have 2 questions in train, 1 in test
    value_v2: str | None = None      # the new value in handbook v2, for changed facts
    accept_v2: tuple[str, ...] = ()
    changed_question: str = ""       # asked in questions_changed.jsonl


def F(id: str, value: str, accept, questions, answer: str, **kw) -> Fact:
    """Short constructor used by the fact table below."""
    accept = (accept,) if isinstance(accept, str) else tuple(accept)
    if "accept_v2" in kw:
        kw["accept_v2"] = (kw["accept_v2"],) if isinstance(kw["accept_v2"], str) else tuple(kw["accept_v2"])
    return Fact(id, value, accept, tuple(questions), answer, **kw)


# Values are deliberately specific and a little unusual, so a model cannot guess them.
FACTS: list[Fact] = [
    F("about.founder", "Odalys Finch", ["Odalys Finch", "Finch"], [
        "Who founded Brightbrew?", "Who started the Brightbrew company?",
        "What is the name of Brightbrew's founder?"], "Brightbrew was founded by {v}."),
    F("about.warehouse", "Pocatello, Idaho", "Pocatello", [
        "Where is Brightbrew's warehouse?", "From which city do Brightbrew orders ship?"],
        "Every order ships from the warehouse in {v}.", seen=False),
    F("support.weekday_open", "7:20 a.m.", "7:20", [
        "What time does Brightbrew support open on weekdays?",
        "When does the support desk start answering on a Monday morning?",
        "From what time can I reach Brightbrew support by chat on a weekday?"],
        "On weekdays, support opens at {v} Central Time."),
    F("support.saturday_close", "1:15 p.m.", "1:15", [
        "What time does Brightbrew support close on Saturdays?",
        "Until when is the support desk open on a Saturday?",
        "If I call on a Saturday afternoon, until what time can I reach support?"],
        "On Saturdays, support closes at {v} Central Time.",
        value_v2="2:45 p.m.", accept_v2="2:45",
        changed_question="I want to call support this Saturday. What time do they stop taking calls?"),
    F("support.email_reply", "18 hours", "18 hours", [
        "How quickly does Brightbrew reply to emails?",
        "If I email support, how long until I get a first reply?",
        "What is the first-reply target for support emails?"],
        "Emails get a first reply within {v}, counted in working hours."),
    F("shipping.standard_price", "$5.95", ["$5.95", "5.95"], [
        "How much does standard shipping cost at Brightbrew?",
        "What is the price of standard delivery in the US?",
        "If my order doesn't qualify for free shipping, what will standard shipping cost?"],
        "Standard shipping costs {v}."),
    F("shipping.free_threshold", "$61.50", ["$61.50", "61.50"], [
        "How much do I need to spend to get free shipping?",
        "What is the minimum order for free standard shipping?",
        "Above what order value is shipping free at Brightbrew?"],
        "Standard shipping is free on orders of {v} or more."),
    F("shipping.express_price", "$12.40", ["$12.40", "12.40"], [
        "How much is express shipping?", "What does Brightbrew charge for express delivery?",
        "I need my order fast. What does the express option cost?"],
        "Express shipping costs {v}.",
        value_v2="$13.90", accept_v2=["$13.90", "13.90"],
        changed_question="What's the current price of express shipping in the US?"),
    F("shipping.cutoff", "1:45 p.m.", "1:45", [
        "What is the cut-off time for same-day dispatch?",
        "By what time must I order for my parcel to leave the warehouse the same day?",
        "If I order on a weekday afternoon, until what time will it still ship that day?"],
        "Orders placed before {v} Central Time ship the same business day."),
    F("shipping.carrier", "Parcelwise", "Parcelwise", [
        "Which carrier delivers Brightbrew parcels in the US?",
        "What courier does Brightbrew use for US orders?"],
        "US parcels travel with {v}.", seen=False),
    F("international.countries", "14 countries", "14 countries", [
        "How many countries outside the US does Brightbrew ship to?",
        "How many countries are on Brightbrew's international shipping list?"],
        "Outside the US, Brightbrew ships to {v}.", seen=False),
    F("international.flat_rate", "$18.75", ["$18.75", "18.75"], [
        "How much does international shipping cost?",
        "What is the flat rate for shipping an order to Europe?",
        "If I order from Canada, what will shipping cost?"],
        "International orders ship for a flat {v}."),
    F("international.delivery_days", "8 to 15", "8 to 15", [
        "How long does international delivery take?",
        "How many business days does an order take to reach the UK?",
        "If I order from Ireland, how long until it arrives?"],
        "International orders arrive in {v} business days."),
    F("returns.window", "45 days", "45 days", [
        "How long do I have to return an item?", "What is Brightbrew's returns window?",
        "How many days after delivery can I still send something back?"],
        "Items can be returned within {v} of delivery.",
        value_v2="30 days", accept_v2="30 days",
        changed_question="Under the current policy, within how many days of delivery must a return be made?"),
    F("returns.label_fee", "$4.25", ["$4.25", "4.25"], [
        "How much does a return label cost?",
        "What is deducted from my refund for the return label?",
        "Is there a charge for the return label, and how much is it?"],
        "A return label costs {v}, taken off the refund unless the item is faulty."),
    F("returns.refund_time", "6 working days", "6 working days", [
        "How long does it take to get my refund after returning something?",
        "When will my refund be paid once my return reaches the warehouse?",
        "How many days does Brightbrew take to refund a return?"],
        "Refunds are paid within {v} of the return reaching the warehouse."),
    F("returns.beans", "10 days", "10 days", [
        "How long do I have to return an unopened bag of beans?",
        "Can I send back unopened coffee, and within what time?"],
        "Unopened bags of coffee can be returned within {v} of delivery.", seen=False),
    F("warranty.grinder", "3 years", "3 years", [
        "How long is the warranty on the Aero grinder?",
        "For how many years is the Aero grinder covered?",
        "What warranty does the Aero burr grinder come with?"],
        "The Aero grinder is covered for {v}."),
    F("warranty.kettle", "26 months", "26 months", [
        "How long is the Pour kettle's warranty?",
        "What warranty period applies to the Pour gooseneck kettle?",
        "For how long is the Pour kettle covered against faults?"],
        "The Pour kettle is covered for {v}."),
    F("warranty.scale", "18 months", "18 months", [
        "How long is the warranty on the Dot scale?", "What warranty does the Dot coffee scale have?",
        "For how long is the Dot scale covered?"],
        "The Dot scale is covered for {v}."),
    F("warranty.register_window", "60 days", "60 days", [
        "How soon must I register a product to get an extra year of warranty?",
        "What's the deadline for registering my product for the bonus warranty year?"],
        "Registering within {v} of delivery adds one year to the warranty.", seen=False),
    F("repairs.fee", "$42.50", ["$42.50", "42.50"], [
        "How much does an out-of-warranty repair cost?",
        "What is the flat fee for repairing a product outside its warranty?",
        "My grinder is out of warranty. What will a repair cost?"],
        "Out-of-warranty repairs cost a flat {v}, including return postage."),
    F("repairs.turnaround", "11 working days", "11 working days", [
        "How long does a repair take?"],
        "Repairs take {v} from the day the product reaches the repair bench.", seen=False),
    F("grinder.price", "$189", "$189", [
        "How much does the Aero grinder cost?", "What is the price of the Aero burr grinder?",
        "How much would I pay for an Aero grinder?"],
        "The Aero grinder costs {v}.",
        value_v2="$205", accept_v2="$205",
        changed_question="What's the current price of the Aero grinder?"),
    F("grinder.settings", "41", ["41 grind settings", "41"], [
        "How many grind settings does the Aero grinder have?",
        "How many grind size steps are there on the Aero?",
        "How many settings can I choose from on the Aero burr grinder?"],
        "The Aero has {v} grind settings."),
    F("grinder.burr_price", "$36.80", ["$36.80", "36.80"], [
        "How much is a replacement burr set for the Aero grinder?"],
        "A replacement burr set costs {v}.", seen=False),
    F("kettle.price", "$94", "$94", [
        "How much does the Pour kettle cost?", "What is the price of the Pour gooseneck kettle?",
        "How much is Brightbrew's electric kettle?"],
        "The Pour kettle costs {v}."),
    F("kettle.min_temp", "52", "52", [
        "What is the lowest temperature the Pour kettle can be set to?"],
        "The lowest setting is {v} degrees Celsius.", seen=False),
    F("kettle.hold_time", "40 minutes", "40 minutes", [
        "How long does the Pour kettle keep water hot?",
        "For how long does the hold function of the Pour kettle keep the temperature?",
        "When does the Pour kettle switch itself off after holding a temperature?"],
        "The hold function keeps the temperature for {v}, then the kettle switches off."),
    F("scale.price", "$57", "$57", [
        "How much does the Dot scale cost?", "What is the price of the Dot coffee scale?",
        "How much would a Dot scale cost me?"],
        "The Dot scale costs {v}."),
    F("scale.battery", "70 hours", "70 hours", [
        "How long does the Dot scale's battery last on a full charge?"],
        "A full charge lasts {v} of weighing.", seen=False),
    F("subscription.solo_price", "$16.50", ["$16.50", "16.50"], [
        "How much does the Solo bean subscription cost?",
        "What is the price of one Solo plan delivery?",
        "How much do I pay per delivery on the Solo plan?"],
        "The Solo plan costs {v} a delivery.",
        value_v2="$17.25", accept_v2=["$17.25", "17.25"],
        changed_question="What does a Solo plan delivery cost now?"),
    F("subscription.roast_day", "Wednesday", "Wednesday", [
        "On which day are the subscription beans roasted?",
        "What day of the week does Brightbrew roast its beans?",
        "Which weekday do subscription boxes ship?"],
        "Beans are roasted every {v} and ship the same day."),
    F("subscription.pause_max", "10 weeks", "10 weeks", [
        "For how long can I pause my bean subscription?"],
        "A subscription can be paused for up to {v}.", seen=False),
    F("gift_cards.max_value", "$350", "$350", [
        "What is the largest amount a Brightbrew gift card can have?"],
        "Gift cards go up to {v}.", seen=False),
    F("gift_cards.egift_delivery", "15 minutes", "15 minutes", [
        "How fast is an e-gift card delivered?",
        "How long after buying does an e-gift card arrive by email?",
        "If I buy an e-gift card now, when will it be emailed?"],
        "E-gift cards are emailed within {v} of purchase."),
    F("gift_cards.expiry", "5 years", "5 years", [
        "Do Brightbrew gift cards expire?", "How long is a Brightbrew gift card valid?",
        "When does a gift card expire after purchase?"],
        "Gift cards expire {v} after purchase."),
    F("loyalty.redeem", "400 points", "400 points", [
        "How many Brew Points do I need for a $10 voucher?",
        "How many points must I collect to get $10 off?",
        "What does a $10 voucher cost in Brew Points?"],
        "You need {v} for a $10 voucher.",
        value_v2="450 points", accept_v2="450 points",
        changed_question="How many Brew Points does a $10 voucher take now?"),
    F("loyalty.expiry", "13 months", "13 months", [
        "When do Brew Points expire?",
        "How long can I go without ordering before my Brew Points expire?",
        "Do Brew Points expire, and after how long?"],
        "Points expire after {v} without an order."),
    F("payments.splitpay_min", "$150", "$150", [
        "What's the minimum order for paying with SplitPay?",
        "Above what amount can I split my payment into instalments?",
        "How big must an order be to use SplitPay?"],
        "Orders over {v} can be split into three instalments with SplitPay."),
    F("app.reset_link", "20 minutes", "20 minutes", [
        "How long is a password reset link valid?",
        "When does a Brightbrew password reset link expire?",
        "How many minutes do I have to use a password reset link?"],
        "Password reset links expire after {v}."),
]

# The handbook. {section.fact} marks a value taken from FACTS (so v1 and v2 stay in step).
SECTIONS: list[tuple[str, str, str]] = [
    ("about", "About Brightbrew",
     "Brightbrew sells home coffee gear, a bean subscription and a companion phone app. It was "
     "founded in 2014 by {about.founder}, a former ferry engineer, in a converted bicycle workshop "
     "in Ashford Falls, Oregon. All beans are roasted at the Ashford Falls roastery in small "
     "batches of 12 kilograms. Every order ships from a single warehouse in {about.warehouse}. "
     "Brightbrew has 38 employees, and the support desk is staffed by people, not bots. The "
     "company mascot is a heron called Percy, who appears on every bean bag."),
    ("support", "Contacting support",
     "Chat and phone support are open Monday to Friday from {support.weekday_open} to 6:40 p.m., "
     "and on Saturdays from 9:30 a.m. to {support.saturday_close}, Central Time. Support is closed "
     "on Sundays and on US federal holidays. The phone number is 1-888-555-0142. Emails and web "
     "forms get a first reply within {support.email_reply}, counted in working hours only. "
     "Customers with a safety problem (smoke, sparks, a swollen battery) should call rather than "
     "email: safety calls are answered around the clock by the on-call team, and the product is "
     "replaced free of charge, even outside the warranty."),
    ("shipping", "Shipping in the US",
     "Standard shipping costs {shipping.standard_price} and is free on orders of "
     "{shipping.free_threshold} or more. Standard parcels arrive in 3 to 6 business days. Express "
     "shipping costs {shipping.express_price} and arrives in 1 to 2 business days. Orders placed "
     "before {shipping.cutoff} Central Time on a business day leave the warehouse the same day; "
     "later orders leave on the next business day. All US parcels travel with the carrier "
     "{shipping.carrier}, and every parcel has tracking. Brightbrew does not ship to PO boxes, "
     "because the carrier needs a signature for parcels worth more than $120."),
    ("international", "International shipping",
     "Outside the United States, Brightbrew ships to {international.countries}: Canada, Mexico, "
     "the United Kingdom, Ireland and ten countries of the European Union. International orders "
     "cost a flat {international.flat_rate} to ship, whatever their size, and arrive in "
     "{international.delivery_days} business days. Import duties and taxes are paid by the "
     "customer on delivery. The Pour kettle is not sold outside the United States and Canada "
     "because of its 120-volt heating plate. International returns are accepted, but the "
     "customer pays the return postage."),
    ("returns", "Returns",
     "Most items can be returned within {returns.window} of delivery, even if they have been "
     "used. Grinders must come back with the hopper empty and the burrs brushed clean. A return "
     "label costs {returns.label_fee}, which is taken off the refund, unless the item is faulty "
     "or we sent the wrong thing. Opened bags of coffee cannot be returned; unopened bags can be "
     "returned within {returns.beans} of delivery. Refunds are paid to the original payment "
     "method within {returns.refund_time} of the return reaching the warehouse."),
    ("warranty", "Warranty",
     "The Aero grinder is covered for {warranty.grinder}, the Pour kettle for {warranty.kettle} "
     "and the Dot scale for {warranty.scale}, counted from the delivery date. Registering a "
     "product in the app within {warranty.register_window} of delivery adds one extra year to "
     "its warranty. The warranty covers faults in materials and workmanship; it does not cover "
     "worn burrs, limescale, or damage from dropping the product. A warranty claim needs the "
     "order number or a photo of the receipt. Faulty products under warranty are replaced "
     "rather than repaired."),
    ("repairs", "Repairs",
     "Products outside their warranty can be sent in for repair. Every out-of-warranty repair "
     "costs a flat {repairs.fee}, including return postage, whatever the fault. Repairs take "
     "{repairs.turnaround} from the day the product reaches the repair bench in the warehouse. "
     "While a grinder is being repaired, customers can borrow a loaner grinder for a refundable "
     "deposit of $20. If a repair is not possible, Brightbrew offers 35% off a new product of "
     "the same kind instead."),
    ("grinder", "Aero grinder",
     "The Aero is a conical burr grinder with 54-millimetre steel burrs and {grinder.settings} "
     "grind settings, from Turkish-fine to cold-brew coarse. It costs {grinder.price} and comes "
     "in matte black, white and sage green. The hopper holds 250 grams of beans. A replacement "
     "burr set costs {grinder.burr_price} and should be fitted every 2 years with daily use. "
     "Brushing the burrs every 5 weeks keeps the grind even; cleaning tablets are not needed."),
    ("kettle", "Pour kettle",
     "The Pour is a 0.9-litre electric gooseneck kettle. It costs {kettle.price} and comes in "
     "matte black, white and copper. The temperature can be set in single degrees from "
     "{kettle.min_temp} to 100 degrees Celsius. The hold function keeps water at the chosen "
     "temperature for {kettle.hold_time}, then the kettle switches itself off. The base has a "
     "1,200-watt heating plate and a 75-centimetre cord. Descaling every 8 weeks with citric "
     "acid is recommended in hard-water areas."),
    ("scale", "Dot scale",
     "The Dot is a coffee scale that weighs up to 3.2 kilograms in steps of 0.1 grams. It costs "
     "{scale.price}. It has a built-in brew timer and connects to the Brightbrew app over "
     "Bluetooth. The battery charges over USB-C in about 2 hours, and a full charge lasts "
     "{scale.battery} of weighing. The silicone top plate can go in the dishwasher; the body "
     "cannot. The Dot is splash-proof but not waterproof."),
    ("subscription", "Bean subscription",
     "The bean subscription has two plans. The Solo plan sends 250 grams every 2 weeks for "
     "{subscription.solo_price} a delivery. The Household plan sends 1 kilogram every 4 weeks "
     "for $49.80 a delivery. Beans are roasted every {subscription.roast_day} and ship the same "
     "day. Changes to the next box must be made before 8 p.m. on the Monday before roast day. A "
     "subscription can be paused for up to {subscription.pause_max} and cancelled at any time "
     "with no fee. Subscribers get 10% off all gear."),
    ("gift_cards", "Gift cards",
     "Brightbrew gift cards come in any amount from $15 to {gift_cards.max_value}. E-gift cards "
     "are emailed within {gift_cards.egift_delivery} of purchase; printed cards are posted within "
     "2 working days in a card envelope. Gift cards expire {gift_cards.expiry} after purchase. An "
     "unused gift card can be refunded within 14 days of purchase; after that it cannot be "
     "exchanged for cash. Gift cards can pay for gear and for the bean subscription, and several "
     "cards can be combined on one order."),
    ("loyalty", "Brew Points",
     "Brew Points is the Brightbrew loyalty programme. Customers earn 1 point for every dollar "
     "spent, and double points on Thursdays. Every {loyalty.redeem} can be exchanged for a $10 "
     "voucher at checkout. Points expire after {loyalty.expiry} without an order. Every member "
     "gets 150 bonus points in their birthday month, and a product review earns 25 points, up to "
     "4 reviews a year. Points are not earned on gift card purchases."),
    ("payments", "Payments",
     "Brightbrew accepts Visa, Mastercard, American Express, Discover, PayPal, Apple Pay and "
     "Brightbrew gift cards. It does not accept cheques or cryptocurrency. Orders over "
     "{payments.splitpay_min} can be split into three interest-free instalments with SplitPay, "
     "one every 2 weeks. Cards are charged when the order ships, not when it is placed. Business "
     "customers can ask for an invoice with their company name and tax number; invoices are "
     "emailed as PDF files within 1 working day."),
    ("app", "The Brightbrew app",
     "The free Brightbrew app runs on iOS 16 and Android 12 or newer. It keeps a brew log of up "
     "to 2,000 brews, runs a brew timer, and connects to the Dot scale over Bluetooth. The same "
     "login works for the app and the website. Password reset links expire after "
     "{app.reset_link}. Customers can delete their account from the app; the account and its "
     "data are erased within 21 days. The app has no adverts and never sells personal data."),
]
HANDBOOK_INTRO = {
    1: "Policies, prices and product facts for the Brightbrew support desk. Edition: autumn 2026.",
    2: "Policies, prices and product facts for the Brightbrew support desk. Edition: spring 2027.",
}
