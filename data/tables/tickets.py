"""Word and phrase tables for the support tickets (`tickets/`), used by `data/generate.py`.

Plain data (plus the small record type the table is built from), no generator logic. Which
generator step reads what:

- `PRODUCT_NAMES`: `Namer`, which expands the `[P]` / `[N]` product placeholders.
- `FIRST_NAMES`, `LAST_NAMES`: `compose_message`, the customer's name.
- `Scenario`, `S(...)`, `SCENARIOS`: the scenario bank; `plan_split` picks a scenario for every
  ticket (and every house-voice prompt), and its fixed labels become the triage record. The
  `reply` cores are the heart of the house-voice replies (`house_reply`).
- `HELD_OUT`: which scenarios (by id, `scenario_ids`) belong to validation and test; all others
  are training scenarios (`split_of`).
- `PRAISE_*`, `FRUSTRATION*`, `ANGRY_ASKS`: `tone_sentence`, the sentence that carries the
  sentiment.
- `POLITE_OPEN`, `CONTEXT`, `EXTRAS`, `DETAILS`, `MOOD_EXTRAS`, `ASKS`, `ORDER_INLINE`:
  `body_sentences`, the rest of the body.
- `INTRO`, `GREETINGS`, `ORDER_TOP`, `ORDER_BOTTOM`: `compose_message`; `SIGNOFF_*`,
  `ONE_LINE_SIGNOFF`: `sign_off`.
- `PROTECTED`: `add_typos`, words that never get a typo.

The generator draws from these lists with seeded random streams, so their order matters:
reordering an entry changes the generated files.
"""

from __future__ import annotations

from dataclasses import dataclass

PHYS = ("grinder", "kettle", "scale")  # the three physical products


# ============================================================================ names

# How customers refer to each product. `owned`: first mention of something they have;
# `shop`: neutral names (also fine before buying); `short`: later mentions.
PRODUCT_NAMES: dict[str, dict[str, list[str]]] = {
    "grinder": {
        "owned": ["the Aero grinder", "my Aero grinder", "my Aero burr grinder", "my burr grinder",
                  "the Aero", "my coffee grinder", "the grinder I bought from you",
                  "the Aero conical grinder"],
        "shop": ["the Aero grinder", "the Aero burr grinder", "your Aero grinder",
                 "the Aero conical burr grinder", "your burr grinder"],
        "short": ["the grinder", "the Aero", "the grinder"],
    },
    "kettle": {
        "owned": ["the Pour kettle", "my Pour kettle", "my gooseneck kettle", "the Pour gooseneck",
                  "my electric kettle", "the Pour", "the kettle I got from you",
                  "my Brightbrew kettle"],
        "shop": ["the Pour kettle", "the Pour gooseneck kettle", "your gooseneck kettle",
                 "the Pour electric kettle", "your Pour kettle"],
        "short": ["the kettle", "the Pour", "the kettle"],
    },
    "scale": {
        "owned": ["the Dot scale", "my Dot scale", "my coffee scale", "my brew scale", "the Dot",
                  "the Brightbrew scale", "the scale I ordered", "my Dot brew scale"],
        "shop": ["the Dot scale", "the Dot brew scale", "your coffee scale", "your Dot scale",
                 "the Dot coffee scale"],
        "short": ["the scale", "the Dot", "the scale"],
    },
    "subscription": {
        "owned": ["my bean subscription", "my coffee subscription", "the bean subscription",
                  "my Brightbrew Beans subscription", "my monthly bean box", "the bean plan"],
        "shop": ["the bean subscription", "your coffee subscription", "the Brightbrew Beans plan"],
        "short": ["the subscription", "the subscription", "the bean box"],
    },
    "app": {
        "owned": ["the Brightbrew app", "your app", "the phone app", "the Brightbrew mobile app",
                  "the brew log app", "your Brightbrew app"],
        "shop": ["the Brightbrew app", "your app", "the Brightbrew phone app"],
        "short": ["the app", "the app", "it"],
    },
    "gift_card": {
        "owned": ["the gift card", "the e-gift card", "the Brightbrew gift card", "the gift voucher",
                  "the digital gift card"],
        "shop": ["a Brightbrew gift card", "a gift card", "an e-gift card", "a gift voucher"],
        "short": ["the card", "the gift card", "the card"],
    },
}

FIRST_NAMES = [
    "Maria", "Tom", "Priya", "Jonas", "Aisha", "Daniel", "Mei", "Carlos", "Fatima", "Liam",
    "Sofia", "Kwame", "Hannah", "Ravi", "Elena", "Oliver", "Yuki", "Amara", "Lucas", "Nadia",
    "Ben", "Chloe", "Tariq", "Grace", "Mateo", "Ingrid", "Samuel", "Leila", "Ethan", "Zara",
    "Noah", "Ana", "Femi", "Claire", "Arjun", "Rosa", "Kenji", "Olivia", "Dmitri", "Isla",
    "Jamal", "Lena", "Pedro", "Ruth", "Ade", "Freya", "Hugo", "Nia", "Marcus", "Wen",
]
LAST_NAMES = [
    "Okafor", "Becker", "Sharma", "Lindqvist", "Haddad", "Murphy", "Chen", "Alvarez", "Nowak",
    "Osei", "Rossi", "Tanaka", "Dubois", "Mensah", "Kowalski", "Ibrahim", "Fischer", "Patel",
    "O'Brien", "Santos", "Novak", "Kim", "Adeyemi", "Larsen", "Moreau", "Reyes", "Walsh",
    "Yilmaz", "Costa", "Brennan",
]


# ============================================================================ scenarios

@dataclass(frozen=True)
class Scenario:
    """One kind of ticket: its labels are fixed by what the text says."""

    category: str
    priority: str
    products: tuple[str, ...]
    texts: tuple[str, ...]        # issue templates: [P] owned name, [N] shop name, {a|b} choices
    owned: bool = True            # the customer already has the product (praise/context may name it)
    order: float = 0.7            # chance that the ticket quotes an order id
    context: bool = False         # may be preceded by a "how long I've had it" sentence
    reply: tuple[str, ...] = ()   # house-voice reply cores (<prod> = display name), for the voice set


def S(category: str, priority: str, products, texts, **kw) -> Scenario:
    """Short constructor used by the scenario bank below."""
    products = (products,) if isinstance(products, str) else tuple(products)
    texts = (texts,) if isinstance(texts, str) else tuple(texts)
    reply = kw.pop("reply", ())
    reply = (reply,) if isinstance(reply, str) else tuple(reply)
    return Scenario(category, priority, products, texts, reply=reply, **kw)


# Priority cues, applied the same way everywhere (data/README.md lists them):
#   urgent: a safety hazard; charged twice or more; needed today / "ASAP"; account taken over.
#   high:   the product or service cannot be used at all; parcel or refund lost; a charge that
#           should not exist; locked out; wrong item; a repeat contact about an unfixed fault.
#   normal: a real problem that does not stop use, or a request to change/return something.
#   low:    a question or a suggestion; nothing is wrong.
SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ billing
    S("billing", "low", "subscription", [
        "Can I pay for [P] with PayPal instead of my card?",
        "Quick question: do you take Apple Pay for [P]? I'd like to switch to it.",
    ], order=0.0, reply="Yes, PayPal and Apple Pay both work for the <prod>. You can switch under Account, then Payment, and the change applies from your next charge within 1 day."),
    S("billing", "low", "subscription", [
        "Do you offer a prepaid {6-month|12-month|yearly} option for the bean subscription? I'd happily pay upfront if it works out cheaper.",
        "Is there a discount if I pay for a whole year of [N] in one go?",
    ], order=0.0, owned=False, reply="We don't have a prepaid plan yet, but I've passed your idea to the team. If it launches, I'll email you within 2 working days of the announcement."),
    S("billing", "low", "subscription", [
        "My card expires next month. How do I update it so [P] carries on without a gap?",
        "What's the easiest way to change the card that pays for [P]? Nothing wrong, I just got a new one.",
    ], order=0.0, reply="You can add the new card under Account, then Payment, and remove the old one. If you'd rather I do it, reply with a good time to call and I'll ring you within 1 working day."),
    S("billing", "low", "subscription", [
        "Just a suggestion: it would be nice to get an email a couple of days before [P] charges each month.",
        "Small idea: a reminder email before each subscription payment would be really handy.",
    ], order=0.0, reply="That's a good idea, and I've shared it with our product team. You'll hear from me within 2 weeks if reminder emails get added."),
    S("billing", "low", "gift_card", [
        "Can I combine {a gift card|an e-gift card|a gift voucher} with my credit card on one order, or does the card have to cover everything?",
        "If I pay for part of an order with a gift card, does the rest go on my card automatically?",
    ], order=0.0, owned=False, reply="Yes, you can pay part with a gift card and the rest by card. The checkout splits it for you, and the card part is charged within a few minutes of ordering."),
    S("billing", "low", "gift_card", [
        "Is there a fee for buying {a gift card|an e-gift card}? Thinking of getting one for my {brother|mum|neighbour|coworker}.",
        "Do gift cards cost anything extra on top of their value? I want one for my {brother|mum|neighbour|coworker}'s birthday.",
    ], order=0.0, owned=False, reply="There's no fee, so a 50 dollar card costs exactly 50 dollars. E-gift cards reach the inbox within 15 minutes of purchase."),
    S("billing", "low", PHYS, [
        "Do you offer payment in instalments for [N]? Just looking into it before I buy.",
        "Is there a pay-later option for [N]? Not in a hurry, just planning.",
    ], order=0.0, owned=False, reply="Yes, orders over 150 dollars can be split into 3 payments with SplitPay at checkout. If you'd like, I can send you a step-by-step guide within 1 working day."),
    S("billing", "low", PHYS, [
        "Could you send me an invoice for [P]? I need it for my {records|expenses|accountant}, no rush.",
        "Can I get a proper invoice with my name on it for [P]? Whenever you have time.",
    ], order=0.9, reply="Of course. I'll email you a full invoice for your <prod> within 1 working day."),
    S("billing", "low", PHYS, [
        "Small suggestion: it would be handy if the receipt for [P] showed the warranty end date.",
        "Idea for you: print the serial number of [P] on the receipt, it would make warranty stuff easier.",
    ], order=0.4),
    # normal
    S("billing", "normal", PHYS, [
        "I tried to use the code {SPRING15|BREW10|WELCOME20} when I ordered [N] but it didn't apply, so I paid full price.",
        "The discount code {SPRING15|BREW10|WELCOME20} was still valid when I bought [N], but the checkout ignored it.",
    ], order=0.9, reply="I'm refunding the discount to your card now. It should show on your statement within 5 working days."),
    S("billing", "normal", PHYS, [
        "I was charged {$5.95|$12.40} shipping for [N] even though the order was over the free shipping amount.",
        "My order for [N] should have had free shipping but I paid {$5.95|$12.40} for it.",
    ], order=0.9, reply="You're right, that order qualified for free shipping. I've refunded the shipping charge, and it will reach your card within 5 working days."),
    S("billing", "normal", (*PHYS, "subscription"), [
        "The invoice for [P] has the wrong {billing address|company name|VAT number} on it. Could you issue a corrected one?",
        "My receipt for [P] shows {my old address|a typo in my name|the wrong company name}. Can you fix it?",
    ], order=0.8, reply="I've corrected the details on our side. A new invoice will be in your inbox within 1 working day."),
    S("billing", "normal", "subscription", [
        "[P] went up from {$15.00|$16.00} to $16.50 on my last renewal and I don't remember seeing a notice. Can you explain?",
        "Why did [P] cost more this month? I didn't see any email about a price change.",
    ], order=0.5, reply="The Solo plan price changed this month, and I'm sorry the notice didn't reach you. I've added a one-off credit for the difference, which you'll see on your next renewal within 4 weeks."),
    S("billing", "normal", "gift_card", [
        "I paid for {a gift card|an e-gift card} with {PayPal|my Visa} and the receipt shows the wrong amount ({$50 instead of $75|$25 instead of $40}). The charge itself looks right.",
        "The receipt for the gift card I bought lists a different value from the one I paid. The bank charge is correct, just the receipt is off.",
    ], order=0.8, owned=False, reply="Thanks for spotting that. I'll send a corrected receipt within 1 working day, and the gift card itself is fine to use."),
    # high
    S("billing", "high", "subscription", [
        "I cancelled [P] {two weeks ago|last month|on the 3rd} and I've still been charged {$16.50|$49.80}. I have the cancellation email.",
        "[P] was cancelled {weeks ago|at the start of the month} but another payment has just come out of my account.",
    ], order=0.5, reply="I can see the cancellation, so that charge should not have happened. I've refunded it in full, and it will be back on your card within 5 working days."),
    S("billing", "high", "subscription", [
        "The payment for [P] keeps failing even though my card works everywhere else, and now my account says the subscription is suspended.",
        "My subscription has been suspended because of a failed payment, but my bank says nothing was declined. I can't get my beans.",
    ], order=0.3, reply="I've taken the suspension off and cleared the failed payment. Your next box will ship within 2 working days."),
    S("billing", "high", "gift_card", [
        "There's a charge of {$50|$100|$75} from Brightbrew on my statement for {a gift card|an e-gift card} that I never bought.",
        "I've been charged for a gift card I didn't order. I don't recognise the purchase at all.",
    ], order=0.4, owned=False, reply="I've frozen that gift card so it can't be spent. Our payments team will look into the charge and call you within 1 working day."),
    S("billing", "high", PHYS, [
        "I see a charge for [N] on my card but I never placed that order.",
        "There's a payment on my statement for [N], and I didn't buy one.",
    ], order=0.6, owned=False, reply="I've stopped that order before it ships. Our payments team will check the charge and email you within 1 working day."),
    S("billing", "high", PHYS, [
        "Checkout keeps declining my card when I try to order [N], but my bank says nothing is blocked. I can't complete the purchase at all.",
    ], order=0.0, owned=False),
    S("billing", "high", "gift_card", [
        "I paid for {a gift card|an e-gift card} {three days ago|on Friday}, the money has left my account, but the order says payment failed and no card was ever sent.",
    ], order=0.9, owned=False),
    # urgent
    S("billing", "urgent", "subscription", [
        "I've been charged twice for {this month's|my latest} bean subscription delivery. Two identical charges of {$16.50|$49.80} on the same day.",
        "[P] charged me twice this month. Same amount, same day.",
    ], order=0.5, reply="I can see the duplicate charge and I've refunded it today. It will be back on your card within 5 working days."),
    S("billing", "urgent", PHYS, [
        "I was charged twice for [N]. Same amount, same day, two transactions. Please fix this ASAP.",
        "You've taken the payment for [N] twice and I need the second one reversed ASAP.",
    ], order=0.9, reply="I've reversed the second payment today. Your bank should release it within 3 working days."),
    S("billing", "urgent", "gift_card", [
        "Your site charged me twice for {a gift card|an e-gift card} and I only got one code. Please refund the duplicate ASAP.",
        "Double charge for {one gift card|a single e-gift card}. I need the extra payment back ASAP.",
    ], order=0.9, owned=False, reply="I've refunded the duplicate payment today. You'll see it back on your card within 5 working days."),
    S("billing", "urgent", (*PHYS, "subscription"), [
        "My card has been charged {three|3} times for the same order of [P]. This needs sorting today.",
    ], order=0.9),
    S("billing", "urgent", PHYS, [  # v2: needed today (the low-priority invoice request's twin)
        "I need a proper invoice for [P] today. My {company|employer}'s expense deadline is {tonight|at 5pm today} and the order page only shows a receipt.",
        "Can you email me a VAT invoice for [P] ASAP? Finance {won't|will not} pay me back unless I send it in today.",
    ], order=0.9, reply="I've emailed the full invoice for your <prod> today. It should be in your inbox within 10 minutes, ready to forward."),
    # ------------------------------------------------------------------ shipping
    S("shipping", "low", ("grinder", "scale"), [  # not the kettle: it is not sold abroad
        "Do you ship [N] to {Canada|the UK|Ireland|Germany}? And roughly how long does it take?",
        "Can [N] be delivered to {Canada|the UK|Ireland|Germany}? Just wondering before I order.",
    ], order=0.0, owned=False, reply="Yes, we ship the <prod> there with tracking. International orders arrive within 8 to 15 business days of dispatch."),
    S("shipping", "low", PHYS, [
        "Is it possible to choose a delivery day for [N]? I'm out most weekdays. Just asking before I order.",
    ], order=0.0, owned=False, reply="You can pick a delivery day at checkout, including Saturdays. If you need a different day later, reply here and I'll arrange it within 1 working day."),
    S("shipping", "low", "subscription", [
        "What day of the month does [P] usually ship? Just trying to plan around it.",
        "Which day do the bean boxes go out? I'd like to know when to expect mine.",
    ], order=0.0, reply="We roast every Wednesday and the box ships the same day. It usually reaches you within 3 to 6 business days."),
    S("shipping", "low", "subscription", [
        "Could the bean box come in a flatter package that fits through my letterbox? Just a thought.",
    ], order=0.0, reply="Thanks for the idea, our packaging team is looking at letterbox-sized boxes this year. I'll let you know within 2 weeks if a trial starts."),
    S("shipping", "low", "gift_card", [
        "Do you send physical gift cards, or are they email only? Thinking about one for {Christmas|a birthday|my dad}.",
    ], order=0.0, owned=False, reply="We do both. Printed cards ship within 2 working days, and e-gift cards arrive by email within 15 minutes."),
    S("shipping", "low", PHYS, [
        "Which courier do you use? I'm about to order [N] and want to know what to look out for.",
    ], order=0.0, owned=False),
    # normal
    S("shipping", "normal", PHYS, [
        "My order for [N] was due {Tuesday|on Monday|yesterday} and tracking hasn't updated in {two|three} days. Is it still on its way?",
        "The order with [N] should have arrived by now. The tracking page has said 'in transit' for {two|three} days.",
    ], order=0.9, owned=False, reply="I've checked with the courier and your parcel is moving again. It should reach you within 2 working days, and I'll keep an eye on it."),
    S("shipping", "normal", "subscription", [
        "This month's bean box is {a few days|three days|four days} later than usual. Any idea when it'll arrive?",
        "[P] hasn't turned up yet this month, it usually comes {on Friday|by the weekend}.",
    ], order=0.6, reply="Your box left our roastery a little late this week. It's with the courier now and should arrive within 2 working days."),
    S("shipping", "normal", PHYS, [
        "I need to change the delivery address for [N], it hasn't shipped yet. New address is {14 Alder Lane|22 Birch Road|9 Harbour Street}.",
        "Can you update the address on my order of [N] before it goes out? I've moved to {14 Alder Lane|22 Birch Road|9 Harbour Street}.",
    ], order=0.9, owned=False, reply="I've updated the address on your order. It will ship to the new address within 1 working day."),
    S("shipping", "normal", "gift_card", [
        "I ordered a printed gift card and it's still showing 'processing' after {four|five} days. When will it ship?",
    ], order=0.9, owned=False, reply="Your printed card was waiting on a stock delay. It ships tomorrow, and tracking will reach your inbox within 1 day of that."),
    S("shipping", "normal", PHYS, [
        "Tracking says [N] is held at the local depot. Can you arrange redelivery for {Thursday|Friday|next week}?",
    ], order=0.9, owned=False, reply="I've asked the courier to redeliver on the day you chose. You'll get a confirmation email within 1 working day."),
    # high
    S("shipping", "high", PHYS, [
        "Tracking says [P] was delivered {on Friday|yesterday|two days ago} but nothing arrived. I've checked with the neighbours and the building office.",
        "My order of [N] is marked as delivered, but there's no parcel anywhere.",
    ], order=0.9, owned=False, reply="I've opened a claim with the courier. If they can't find it within 2 working days, I'll send a replacement straight away."),
    S("shipping", "high", PHYS, [
        "My order for [N] has been stuck 'in transit' for {over two weeks|16 days|three weeks}. I think it's lost.",
        "[P] never arrived. Tracking hasn't moved for {over two weeks|16 days|three weeks}.",
    ], order=0.9, owned=False, reply="That parcel looks lost, so I'm sending a replacement <prod> now. It will ship within 1 working day, with tracking."),
    S("shipping", "high", "subscription", [
        "My bean box never arrived this month. Tracking stopped {ten days|12 days} ago and I'm completely out of coffee.",
        "[P] delivery is missing. It's been {ten days|12 days} with no update at all.",
    ], order=0.7, reply="I'm sending a fresh box by express now. It should reach you within 2 working days."),
    S("shipping", "high", "gift_card", [
        "The printed gift card I ordered was marked delivered {last week|on Monday} but it never came.",
    ], order=0.9, owned=False, reply="I've cancelled that card so nobody else can use it. A new one will be in your inbox as an e-gift card within 15 minutes."),
    S("shipping", "high", PHYS, [
        "The parcel with [N] was sent to my old address even though I updated it before ordering. It's gone.",
    ], order=0.9, owned=False),
    # urgent
    S("shipping", "urgent", PHYS, [
        "I need [P] delivered today, it's a {birthday|anniversary|retirement} present and the party is tonight. Tracking says {tomorrow|Monday}. Can you do anything ASAP?",
        "Is there any way to get [N] to me today? It's a gift for tonight and tracking says {tomorrow|Monday}.",
    ], order=0.9, owned=False, reply="I've asked the courier to prioritise your parcel for delivery today. I'll call you within 2 hours to confirm the time."),
    S("shipping", "urgent", "gift_card", [
        "The printed gift card for my {sister|dad|friend}'s birthday today still hasn't arrived and the party starts {at 6|tonight|in a few hours}. Please help ASAP.",
    ], order=0.9, owned=False, reply="I've sent an e-gift card for the same amount to your email. It will arrive within 15 minutes, ready to print or forward."),
    S("shipping", "urgent", "subscription", [
        "I run a small pop-up café and my bean box was meant to arrive {yesterday|this morning}. We open today at {noon|2pm} and I have no beans. Can you send something ASAP?",
    ], order=0.8),
    S("shipping", "urgent", PHYS, [
        "The courier is about to send [N] back to you as undeliverable. I'm home all day today, please stop the return ASAP.",
    ], order=0.9, owned=False, reply="I've told the courier to keep your parcel and redeliver today. You'll get a text with the time slot within 1 hour."),
    S("shipping", "urgent", PHYS, [  # v2
        "[N] is waiting at the courier's depot and I fly abroad tonight for {three weeks|a month}. Can I collect it from the depot today?",
        "I'm moving abroad tomorrow morning and [N] is still out for delivery. Please ask the driver to bring it before tonight.",
    ], order=0.9, owned=False, reply="I've asked the courier to get your parcel to you today, or to hold it at the depot for collection. I'll text you the details within 1 hour."),
    # ------------------------------------------------------------------ returns
    S("returns", "low", PHYS, [
        "What's your return policy on [N] if I just change my mind? Haven't bought it yet.",
        "If I order [N] and it's not for me, can I send it back? Asking before I buy.",
    ], order=0.0, owned=False, reply="Yes, you can return the <prod> within 45 days of delivery, even if you've used it. Start a return from your order page and the label arrives within 1 working day."),
    S("returns", "low", PHYS, [
        "Do I need to keep the original box for [P] in case I ever need a return? Trying to declutter.",
    ], order=0.0, reply="You don't need the original box, any sturdy box works. If you ever start a return, we email a label within 1 working day."),
    S("returns", "low", "gift_card", [
        "Are gift cards refundable? I'm asking before I buy one.",
    ], order=0.0, owned=False, reply="Unused gift cards can be refunded within 14 days of purchase. After that they stay valid for 5 years, so nothing is lost."),
    S("returns", "low", "subscription", [
        "Can I return an unopened bag of beans from [P] if I end up with too many? Just asking for future reference.",
    ], order=0.0, reply="Yes, unopened bags can come back within 10 days of delivery. You could also skip a box, and the change takes effect within 1 day."),
    S("returns", "low", PHYS, [
        "Suggestion: put a return label in the box with [N]. It would make returns much easier.",
    ], order=0.0, owned=False),
    # normal
    S("returns", "normal", PHYS, [
        "I'd like to return [P]. It works fine, it's just {too big for my counter|not right for my setup|a gift I don't need}. How do I start?",
        "Please can I send back [P]? Nothing wrong with it, I just {don't use it|changed my mind}.",
    ], order=0.8, owned=False, reply="Of course, the <prod> is well within the returns window. I'll email your return label within 1 working day."),
    S("returns", "normal", PHYS, [
        "[P] arrived in {black but I ordered white|white but I ordered black|sage green but I ordered matte black}. Could I swap it?",
        "Wrong colour: I ordered {white|copper} and [P] came in {black|sage green}. Can I exchange it?",
    ], order=0.9, owned=False, reply="I'm sending the right colour today. A return label for the other one will reach your inbox within 1 working day."),
    S("returns", "normal", PHYS, [
        "There's a small scratch on {the lid|the base|the side} of [P]. It works fine. Can I exchange it?",
    ], order=0.8, owned=False, reply="I'm sending a replacement <prod> now, and it ships within 2 working days. Keep the scratched one until the return label arrives."),
    S("returns", "normal", "subscription", [
        "I got {a dark roast|a decaf|the Ethiopia} bag this month instead of my usual {medium roast|light roast|Colombia}. Can I send it back for the right one?",
    ], order=0.7, reply="I'm sending the right bag today, and you can keep the other one. It should arrive within 3 working days."),
    S("returns", "normal", "gift_card", [
        "I bought {a gift card|an e-gift card} by mistake {last week|five days ago} and haven't used it. Can I get a refund?",
    ], order=0.8, owned=False, reply="Yes, unused cards can be refunded within 14 days. I've cancelled it and the money will be back on your card within 6 working days."),
    S("returns", "normal", PHYS, [
        "I sent [P] back {two weeks|ten days} ago. Any update on the refund?",
    ], order=0.9, owned=False),
    S("returns", "normal", "subscription", [  # v2
        "The bag in this month's box from [P] was already past its best-before date. Could you swap it for a fresh one?",
        "One of the bags in my bean box {was only half full|had a torn valve|arrived unsealed}. Can I exchange it?",
    ], order=0.7, reply="I'm sending a fresh bag today, and there's no need to send the old one back. It should arrive within 3 working days."),
    # high
    S("returns", "high", PHYS, [
        "I was sent the wrong item: I ordered [N] and got {a box of paper filters|someone else's order|a bag of cleaning tablets}.",
        "The box I got doesn't contain [N] at all, it's {a box of paper filters|someone else's order}.",
    ], order=0.9, owned=False, reply="I'm sending the <prod> by express now, so it should arrive within 2 working days. A return label for the wrong item will follow by email."),
    S("returns", "high", PHYS, [
        "[P] arrived broken: {the housing is cracked|a piece has snapped off|the base is dented in}, and it can't be used. I'd like a replacement.",
        "The box was crushed and [P] inside is broken. It doesn't work at all.",
    ], order=0.9, reply="I'm sending a replacement <prod> by express today. It should reach you within 2 working days, and there's no need to return the broken one."),
    S("returns", "high", PHYS, [
        "I returned [P] {five weeks|over a month|six weeks} ago and still have no refund. Tracking shows you received it {on the 2nd|on the 9th}.",
    ], order=0.9, reply="I can see your return arrived, and the refund was stuck. I've issued it now, and it will reach your card within 5 working days."),
    S("returns", "high", "subscription", [
        "My whole bean box arrived {soaked|split open|crushed} and the bags are unusable. I'd like a replacement.",
    ], order=0.8, reply="I'm sending a new box by express. It should arrive within 2 working days."),
    S("returns", "high", "gift_card", [
        "I returned an unused printed gift card {a month|five weeks} ago and the refund still hasn't come through.",
    ], order=0.9, owned=False),
    S("returns", "high", PHYS, [
        "The return label you emailed for [P] doesn't work, the courier rejected it twice, and my return window is nearly over.",
    ], order=0.9, reply="I've made you a new label and extended your return window by 14 days. The label will be in your inbox within 1 hour."),
    # urgent
    S("returns", "urgent", "kettle", [
        "[P] {sparks|gives off sparks} when I switch it on. I've unplugged it and I want to return it for a full refund.",
    ], order=0.8, reply="Please keep the <prod> unplugged and don't use it again. I've refunded you in full today, and a courier will collect it within 2 working days."),
    S("returns", "urgent", "grinder", [
        "[P] started smoking the first time I used it. I don't want a repair, I want my money back. Please send a return label ASAP.",
    ], order=0.8, reply="Please don't plug the <prod> in again. I've issued a full refund today, and a prepaid label will reach you within 1 hour."),
    S("returns", "urgent", "scale", [
        "The battery in [P] has swollen and the case is bulging. I'm not comfortable keeping it in the house. How do I return it right away?",
    ], order=0.8, reply="Please keep the <prod> away from heat and don't charge it. A courier can collect it today, and I'll call you within 1 hour to book the slot."),
    S("returns", "urgent", PHYS, [
        "My return window for [P] closes today and I still haven't received the return label. Please send it ASAP.",
    ], order=0.9, reply="I've extended your return window, so there's no rush on your side. The label will be in your inbox within 1 hour."),
    S("returns", "urgent", "subscription", [
        "The bag in this month's box smells of {petrol|chemicals|smoke} and my partner felt sick after one cup. I want it refunded and collected today.",
    ], order=0.8),
    S("returns", "urgent", "gift_card", [
        "The refund window for {the e-gift card|the gift card} I bought by mistake ends today. Please cancel it and refund me ASAP.",
    ], order=0.9, owned=False, reply="I've cancelled the card and started the refund today. It will be back on your card within 6 working days."),
    # ------------------------------------------------------------------ technical
    S("technical", "low", "grinder", [
        "What grind setting do you recommend for {pour-over|French press|AeroPress|espresso} on [P]?",
        "Which number should I set [P] to for {pour-over|French press|cold brew}?",
    ], order=0.0, context=True, reply="It depends on your brew method, so start in the middle of the range and adjust two steps at a time. If you send me your recipe, I'll suggest a setting within 1 working day."),
    S("technical", "low", "kettle", [
        "Is it okay to leave water in [P] overnight? Just checking, no problems so far.",
    ], order=0.0, context=True, reply="Yes, that's fine, just empty and dry the <prod> once a week. I'll send our care sheet within 1 working day."),
    S("technical", "low", "kettle", [
        "What's the lowest temperature [P] can hold? I want to try it for green tea.",
    ], order=0.0, context=True, reply="The <prod> can hold 52 degrees and up, which suits green tea well. I'll send our tea guide within 1 working day."),
    S("technical", "low", "scale", [
        "How do I switch [P] from grams to ounces?",
    ], order=0.0, context=True, reply="Hold the power button for 3 seconds to change units. I'll email you the quick-start guide within 1 working day."),
    S("technical", "low", "scale", [
        "Does [P] have a timer that starts by itself when I begin pouring? Couldn't find it in the manual.",
    ], order=0.0, context=True, reply="Yes, double-tap the timer button and it starts with your first pour. I'll email you the quick-start guide within 1 working day."),
    S("technical", "low", "app", [
        "Is there a dark mode in [P]? Would be nice for early mornings.",
        "Feature idea: let me export my brew log from [P] as a spreadsheet.",
    ], order=0.0, reply="That's on our list for the next update. I'll let you know within 2 weeks when the release date is set."),
    S("technical", "low", "app", [
        "Does [P] work on {an iPad|a tablet|Android 12}? Thinking of installing it on my {tablet|old phone}.",
    ], order=0.0, owned=False, reply="It runs on iOS 16 and Android 12 or newer, tablets included. If your device is older, reply here and I'll check it for you within 1 working day."),
    S("technical", "low", "grinder", [
        "How often should I clean the burrs on [P]? Just want to look after it.",
    ], order=0.0, context=True, reply="A quick brush every 5 weeks keeps the <prod> grinding evenly. I'll send you our cleaning guide within 1 working day."),
    # normal
    S("technical", "normal", "grinder", [
        "[P] has started making a {squeaking|clicking|rattling} noise when grinding. It still grinds fine.",
        "The grind from [P] seems coarser than it used to be at the same setting. Do I need to recalibrate?",
    ], order=0.3, context=True, reply="That usually means the burrs need a clean and a small recalibration. I'll email you a short video guide within 1 working day."),
    S("technical", "normal", "kettle", [
        "The temperature on [P] reads about {3|4|5} degrees higher than my thermometer. Still usable, but I'd like it accurate.",
    ], order=0.3, context=True, reply="A reset usually fixes this: hold the hold and power buttons together for 5 seconds. If it doesn't, reply here and I'll arrange a replacement within 2 working days."),
    S("technical", "normal", "kettle", [
        "The lid on [P] sticks a bit when I open it. It still works.",
    ], order=0.3, context=True, reply="A drop of food-safe oil on the hinge usually frees it. If it still sticks, reply here and I'll send a new lid within 3 working days."),
    S("technical", "normal", "scale", [
        "[P] drifts by {0.2|0.3|half a} gram while I'm pouring. It's usable, but I'd like it accurate.",
    ], order=0.3, context=True, reply="A recalibration should sort this, and it takes about a minute. I'll send you the steps within 1 working day."),
    S("technical", "normal", "scale", [
        "The display on [P] is quite dim, even on a full charge. Readable, but hard to see in daylight.",
    ], order=0.3, context=True, reply="There's a brightness setting: hold the unit button for 5 seconds. If it's still dim, I'll send a replacement within 2 working days."),
    S("technical", "normal", "app", [
        "[P] takes {20|30} seconds to open since the last update.",
        "The brew timer in [P] {stops when the screen locks|resets when I switch apps}. Not a big deal, but can it be fixed?",
    ], order=0.0, context=True, reply="Our app team has found the cause, and a fix is in the next update. It should reach your phone within 10 days."),
    # high
    S("technical", "high", "grinder", [
        "[P] won't turn on at all. {I've tried different sockets.|No light, nothing.} I can't make coffee.",
        "The burrs on [P] are jammed and the motor just hums. Nothing comes out.",
    ], order=0.4, context=True, reply="Please leave the <prod> unplugged for now. I'll send a replacement within 2 working days, with a label for the old one."),
    S("technical", "high", "kettle", [
        "[P] doesn't heat anymore. The display comes on, but the water stays cold.",
        "[P] switches itself off after a few seconds every time. I can't boil anything.",
    ], order=0.4, context=True, reply="That sounds like a faulty heating plate. A replacement <prod> will ship within 2 working days."),
    S("technical", "high", "scale", [
        "[P] shows {E4|Err|E2} and won't weigh anything. I've charged it overnight.",
        "[P] is completely dead. It won't switch on even after charging.",
    ], order=0.4, context=True, reply="That sounds like a hardware fault, so I'm replacing the <prod>. The new one ships within 2 working days."),
    S("technical", "high", "app", [
        "[P] crashes every time I open it since the update. I can't use it at all.",
        "My whole brew log disappeared from [P] after the update. {Two years|Eight months} of notes, gone.",
    ], order=0.0, context=True, reply="Our app team is on this now, and your data is safe on our servers. A fixed version will be out within 3 days."),
    S("technical", "high", PHYS, [
        "Third time writing about this: [P] still {won't power on|does not work} after the fix you suggested.",
    ], order=0.6),
    # urgent
    S("technical", "urgent", "kettle", [
        "There's a burning smell coming from the base of [P] and the cord gets hot. I've unplugged it.",
        "I got a small electric shock touching [P] while it was plugged in.",
    ], order=0.4, reply="Please keep the <prod> unplugged and don't use it again. A replacement ships today, and I'll call you within 1 hour to arrange collection."),
    S("technical", "urgent", "grinder", [
        "[P] let out {a puff of smoke|smoke} and a burning smell when I switched it on. Is it safe?",
        "Sparks came out of the vent on [P] while it was grinding.",
    ], order=0.4, reply="Please unplug the <prod> and don't use it again. We'll send a replacement today, and a courier will collect the old one within 2 working days."),
    S("technical", "urgent", "scale", [
        "The battery in [P] is swelling and the case has cracked open. It's hot to the touch.",
    ], order=0.4, reply="Please move the <prod> away from anything that can burn and don't charge it. I'll call you within 1 hour to arrange a safe collection."),
    S("technical", "urgent", "app", [
        "[P] is showing other customers' names and addresses in my order history. That looks like a data leak, please look at it ASAP.",
        "[P] is sending me {dozens of|hundreds of} notifications a minute and my phone is unusable. I need a fix ASAP.",
    ], order=0.0, reply="Our app team is working on this right now. I'll update you within 2 hours."),
    S("technical", "urgent", "kettle", [  # v2
        "Water is leaking from the base of [P] while it's plugged in, and I felt a tingle, like a small shock, when I touched the handle.",
        "[P] leaks onto the plug socket every time I fill it. I'm scared someone will get a shock.",
    ], order=0.4, reply="Please unplug the <prod> at the wall and don't use it again. A replacement ships today, and a courier will collect the leaking one within 2 working days."),
    # ------------------------------------------------------------------ account
    S("account", "low", "app", [
        "Can I change the display name on my profile in [P]? Just curious.",
        "Is there a way to turn on two-step login in [P]?",
    ], order=0.0, reply="Yes, you'll find that under Profile in the app. If you get stuck, reply here and I'll walk you through it within 1 working day."),
    S("account", "low", "app", [
        "Suggestion: it would be great to log in to [P] with Face ID.",
    ], order=0.0, reply="Good idea, and I've passed it to our app team. I'll let you know within 2 weeks if it makes the next release."),
    S("account", "low", "subscription", [
        "Can my partner and I share one account but have two separate bean subscriptions?",
        "How do I pause [P] while I'm away next month? Nothing wrong, just planning ahead.",
    ], order=0.0, reply="Yes, you can manage that from the Subscriptions page in your account. Changes made before Monday at 8pm apply to the next box within 1 week."),
    S("account", "low", "gift_card", [
        "How do I check the balance of a gift card on my account?",
        "Can I add a gift card to my account now and spend it later? Just asking.",
    ], order=0.0, owned=False, reply="You'll find it under Account, then Wallet. Cards you add there stay valid for 5 years, and I can check a balance for you within 1 working day."),
    S("account", "low", "app", [  # v2
        "Where in [P] can I see how many Brew Points I have? Just curious.",
        "Is there a page in [P] that shows my Brew Points history? No problem, just wondering.",
    ], order=0.0, reply="Your Brew Points are on the Rewards tab of the app, with what each voucher costs. I can also email you your current balance within 1 working day."),
    # normal
    S("account", "normal", "app", [
        "I'd like to change the email address I use for [P]. I'm moving away from my old {Hotmail|work|university} address.",
        "Please delete my account in [P] and all the data that goes with it.",
    ], order=0.0, reply="I've started that for you now. You'll get a confirmation email within 1 working day."),
    S("account", "normal", "app", [
        "I never get the password reset email from [P]. I can still log in, I just want to change my password.",
    ], order=0.0, context=True, reply="The reset emails were going to an old address, which I've fixed. Try again now, and the link will arrive within 5 minutes."),
    S("account", "normal", "subscription", [
        "Please update the delivery address on [P] to {14 Alder Lane|22 Birch Road|7 Mill Court} from next month.",
        "The skip button for [P] doesn't seem to do anything when I try to skip next month.",
    ], order=0.0, reply="I've made that change on your account. You'll see it reflected within 1 working day."),
    S("account", "normal", "gift_card", [
        "I added a gift card to my account but the balance shows {$0|$25} instead of {$50|$75}.",
    ], order=0.3, owned=False, reply="I've corrected the balance on your account. It will show the right amount within 1 hour."),
    S("account", "normal", "subscription", [
        "I accidentally made a second account when I signed up for [P]. Can you merge them?",
    ], order=0.0),
    # high
    S("account", "high", "app", [
        "I'm locked out of [P]. It says my account is disabled and the password reset link {doesn't work|expires every time}.",
        "I can't log in to [P] at all, it says 'user not found', but I've had an account for {two years|ages}.",
    ], order=0.0, reply="I've re-enabled your account and sent a fresh reset link. It will arrive within 5 minutes and works for 20 minutes."),
    S("account", "high", "subscription", [
        "I can't get into my account to manage [P]. The password reset link keeps expiring and I can't change my box.",
        "[P] has disappeared from my account after I changed my email, so I can't change or pause it.",
    ], order=0.0, reply="I've linked the subscription back to your account. You'll be able to manage it again within 1 hour."),
    S("account", "high", "gift_card", [
        "My gift card balance of {$80|$120} has vanished from my account. It was there last week.",
    ], order=0.0, owned=False, reply="I can see the balance and I've restored it. It will show in your account within 1 hour."),
    S("account", "high", "app", [  # v2
        "[P] logs me out every time I open it and then says my session has expired. I can't get into my account at all.",
        "The verification code from [P] never arrives, so I can't sign in at all. I've tried {five|six|ten} times.",
    ], order=0.0, context=True, reply="I've reset your sign-in on our side and sent a new verification code. It will arrive within 2 minutes, and you'll stay signed in after that."),
    S("account", "high", "subscription", [  # v2
        "My account was closed by mistake and I can't sign in at all, so I can't see or change [P].",
        "Your site says no account exists for my email, but [P] is still running. I can't log in to manage it.",
    ], order=0.0, reply="I've reopened your account and linked the subscription back to it. You'll be able to sign in within 1 hour, and your box is unchanged."),
    # urgent
    S("account", "urgent", "app", [
        "Someone has logged into my account in [P] from another country and changed my email. I did not do this. Please lock it ASAP.",
        "I'm getting login codes from [P] that I didn't ask for, and my password was just changed. My account has been taken over.",
    ], order=0.0, reply="I've locked your account today, so nobody can sign in. I'll call you within 1 hour to verify you and set a new password."),
    S("account", "urgent", "subscription", [
        "Someone changed the delivery address on [P] to one I don't know. I think my account was hacked. Please freeze it today.",
    ], order=0.0, reply="I've frozen your account and paused the subscription today. I'll call you within 1 hour to restore your details."),
    S("account", "urgent", "gift_card", [
        "Someone got into my account and spent my gift card balance. I got an email about an order I never made.",
    ], order=0.3, owned=False, reply="I've locked your account and cancelled that order today. Your balance will be restored within 1 working day."),
    S("account", "urgent", "app", [  # v2
        "Someone reset my password in [P] and added a card I don't recognise to my account. I didn't do this. Please lock it today.",
        "My account in [P] has been taken over: the name and phone number were changed {last night|an hour ago} and I can't get back in. Please help ASAP.",
    ], order=0.0, reply="Your account is locked as of today, and every change made since the takeover will be undone. I'll ring you within 1 hour to confirm it's you."),
    S("account", "urgent", "subscription", [  # v2
        "Someone got into my account and changed [P] to {five|six} bags a week. I didn't do this, and the next charge goes out tonight. Please freeze it ASAP.",
    ], order=0.0, reply="I've frozen your account today and put your subscription back to your usual box. I'll call you within 1 hour to secure your log-in."),
]


# Scenario ids are positional: "<category>-<priority>-<NN>", NN = the scenario's place (from 01)
# among the scenarios of its (category, priority) cell above. Add a new scenario at the END of
# its cell, never in the middle, or the ids below (and in the data files) shift.
#
# The held-out scenarios: every ticket and house-voice customer of these scenarios goes to
# validation or test, and no training (or pool) row comes from them. One validation and one or
# two test scenarios per (category, priority) cell, so both cover every category and priority
# and training keeps 3+ scenarios of every cell. Picked by hand, before any model was scored on
# them, so that: every held-out cell has a `reply` scenario (the house-voice splits use the
# same scenarios; returns-urgent-05, "beans that made someone ill", is the one test scenario
# without one), the held-out products spread roughly as PRODUCT_PLAN does, training keeps every
# product of every category, and near twins ("a charge I never made", billing-high-03/04) go
# out together. Every other scenario is a training scenario.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "val": (
        "billing-low-02", "billing-normal-02", "billing-high-03", "billing-urgent-01",
        "shipping-low-05", "shipping-normal-02", "shipping-high-02", "shipping-urgent-04",
        "returns-low-02", "returns-normal-02", "returns-high-04", "returns-urgent-03",
        "technical-low-05", "technical-normal-03", "technical-high-01", "technical-urgent-04",
        "account-low-02", "account-normal-02", "account-high-02", "account-urgent-03",
    ),
    "test": (
        "billing-low-03", "billing-low-07", "billing-normal-05", "billing-high-01",
        "billing-high-04", "billing-urgent-02",
        "shipping-low-01", "shipping-low-03", "shipping-normal-01", "shipping-high-01",
        "shipping-urgent-02",
        "returns-low-04", "returns-normal-01", "returns-normal-03", "returns-high-02",
        "returns-high-06", "returns-urgent-01", "returns-urgent-05",
        "technical-low-03", "technical-low-07", "technical-normal-01", "technical-normal-05",
        "technical-high-04", "technical-urgent-02",
        "account-low-04", "account-normal-01", "account-high-01", "account-urgent-02",
    ),
}

# ============================================================================ phrasing

# Sentiment is carried by one tone sentence: praise (positive), frustration (negative), none
# (neutral). Issue sentences themselves are written in a neutral register.
PRAISE_GENERIC = [
    "You folks have been great so far.", "Big fan of Brightbrew, by the way.",
    "Love what you do.", "Your support team has always been lovely.",
    "Honestly one of my favourite shops.", "Keep up the great work!",
    "You've made my mornings so much better.", "Thanks for being such a nice company to buy from.",
    "Everything I've bought from you has been brilliant.",
]
PRAISE_PRODUCT = {
    "grinder": ["I absolutely love [P], it's the best thing on my counter.",
                "Really enjoying [P], the grind is lovely and even.", "[P] is fantastic, by the way."],
    "kettle": ["I love [P], it's beautiful.", "[P] has been a joy to use.",
               "Really happy with [P], pours like a dream."],
    "scale": ["[P] is brilliant, by the way.", "I love [P], it's made my brewing so much better.",
              "Really happy with [P] overall."],
    "subscription": ["Your beans have been fantastic every single month.",
                     "I look forward to the bean box every month, it's wonderful.",
                     "Loving [P], the last roast was amazing."],
    "app": ["I love [P], it's become part of my morning.", "[P] is really nicely made.",
            "Great job on [P], it's lovely to use."],
    "gift_card": [],
}
FRUSTRATION = [
    "This is really frustrating.", "Honestly, I'm very disappointed.", "Not impressed at all.",
    "I'm fed up with this.", "This is ridiculous.", "Very unhappy about this.",
    "I expected a lot better from you.", "What a mess.", "I'm really annoyed.",
    "This is not good enough.", "I'm pretty angry about this, to be honest.",
]
FRUSTRATION_QUESTION = [  # negative but low priority: annoyed about a question, nothing broken
    "It's frustrating that your website doesn't say.", "Your FAQ is useless on this, honestly.",
    "I've looked all over your site for this and I'm getting annoyed.",
]
ANGRY_ASKS = ["What are you going to do about it?", "I want this put right."]  # negative only
FRUSTRATION_URGENT = ["This is unacceptable.", "I'm furious.", "This is completely unacceptable."]

ASKS = {
    "low": ["Thanks in advance.", "Thanks!", "Appreciate it.", "Thank you."],
    "normal": ["Can you help?", "What are my options?", "Please advise.",
               "Let me know what you need from me.", "Could you look into it?",
               "What should I do?", "Thanks for your help."],
    "high": ["Can you help?", "What are my options?", "Please sort this out.",
             "I'd like this fixed.", "Please look into it."],
    "urgent": ["Please help ASAP.", "I need an answer today.", "Please deal with this today.",
               "Please get back to me ASAP."],
}
CONTEXT = {
    "grinder": ["I bought [P] {in March|last spring|around Christmas|about a year ago}.",
                "I've had [P] for {about six months|a year or so|a couple of months}.",
                "I use [P] {every morning|twice a day|most days}."],
    "kettle": ["I bought [P] {in March|last spring|around Christmas|about a year ago}.",
               "I've had [P] for {about six months|a year or so|a couple of months}."],
    "scale": ["I bought [P] {in March|last spring|around Christmas|about a year ago}.",
              "I've had [P] for {about six months|a year or so|a couple of months}."],
    "subscription": ["I've been on [P] for {eight months|two years|a few months}."],
    "app": ["I use [P] {every morning|for every brew|most days} on my {iPhone|Android phone|Pixel}.",
            "I've been using [P] since {last year|the spring|it came out}."],
    "gift_card": [],
}
EXTRAS = [  # label-neutral details that make tickets longer and less uniform
    "I've been a customer for {two|three|five} years.",
    "I'm writing from my partner's email, hope that's ok.",
    "Sorry if this is the wrong place to ask.",
    "I tried the help page first but couldn't find an answer.",
    "I'd rather sort this out by email than by phone, if possible.",
    "I'm usually home after {5|6}pm if anyone needs to call.",
    "My phone number is on the account.",
    "Long-time customer, first time writing in.",
]
# Category details for real problems (normal/high/urgent): more words, same labels.
DETAILS = {
    "billing": ["I checked my statement {this morning|last night|at the weekend}.",
                "The payment was on my {Visa|Mastercard|Amex|debit card}.",
                "I can send a screenshot of the statement if that helps."],
    "shipping": ["I live in a flat, so parcels usually go to the front desk.",
                 "I've checked the tracking page {twice|a few times} now.",
                 "The courier's website doesn't say anything useful."],
    "returns": ["I still have all the packaging.", "I've kept the receipt and the box.",
                "I'd rather not drive to a post office if there's another way."],
    "technical": ["I've followed the troubleshooting page in the manual.",
                  "I haven't dropped it or got it wet.", "Nothing else in my kitchen has changed."],
    "account": ["I've had this account for years.", "I use the same email address for everything.",
                "A confirmation email once it's sorted would be great."],
}
MOOD_EXTRAS = {  # extra sentences in the customer's mood (they only add to the tone sentence)
    "negative": ["I've recommended you to friends, and now I'm embarrassed.",
                 "Last time I had a problem it took a week to get an answer.",
                 "I spent ages looking for a phone number on your site.",
                 "I have already lost a morning to this."],
    "positive": ["I've recommended you to all my friends.", "The packaging was lovely too.",
                 "Your support team helped me so nicely last time."],
    "neutral": [],
}
POLITE_OPEN = ["Hope you're well.", "Hope you're having a good week.", "Quick one.",
               "Hope this is the right address for this."]
ORDER_INLINE = ["Order number: {oid}.", "My order number is {oid}.", "It's order {oid}.",
                "(Order {oid})", "Order #{oid}.", "Ref: {oid}.", "The order is {oid}.",
                "Order number, in case you need it: {oid}."]
ORDER_TOP = ["Order {oid}", "Re: order {oid}", "RE: {oid}", "Order #{oid}"]
ORDER_BOTTOM = ["Order: {oid}", "Order ref {oid}", "#{oid}"]
INTRO = ["{first} here.", "This is {full}.", "My name is {full}."]  # a named customer's intro

GREETINGS = {
    "any": ["Hi,", "Hello,", "Hi there,", "Hey,", "Hello Brightbrew,", "Hi team,", "Good morning,",
            "Good evening,", "Dear Brightbrew team,", "Hi Brightbrew support,"],
    "positive": ["Hi Brightbrew team!", "Hello lovely people,", "Hey folks!"],
    "negative": ["To whom it may concern,", "Hello.", "Brightbrew,"],
    "neutral": [],
}
SIGNOFF_NAMED = {
    "any": ["Thanks,\n{first}", "Thank you,\n{full}", "Best,\n{full}", "Regards,\n{full}",
            "- {first}", "{first}", "Many thanks,\n{first}"],
    "positive": ["Cheers,\n{first}", "Have a lovely day,\n{first}", "Thanks so much!\n{first}"],
    "negative": ["Waiting to hear back,\n{first}", "{full}"],
    "neutral": ["Cheers,\n{first}", "Thanks in advance,\n{full}"],
}
SIGNOFF_ANON = {"any": ["Sent from my phone"], "positive": ["Thanks so much!", "Cheers"],
                "negative": [], "neutral": ["Thanks", "Thank you"]}
ONE_LINE_SIGNOFF = ["- {first}", "thanks, {first}", "cheers {first}", "{first}"]

# Words never given a typo: the cues that decide a label must stay readable.
PROTECTED = {"twice", "today", "tonight", "urgent", "sparks", "smoke", "smoking", "burning",
             "shock", "swelling", "swollen", "hacked", "grinder", "kettle", "scale", "subscription",
             "brightbrew", "refund", "return", "invoice", "charged", "delivered"}
