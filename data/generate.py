#!/usr/bin/env python3
"""Generate the course's Brightbrew datasets (tickets, house voice, handbook) from one fixed seed.

Everything here is fictional and written for the course. The script uses the standard library
only (no network, no model), so running it again rewrites byte-identical files:

    python data/generate.py              # writes into data/
    python data/generate.py --out DIR    # writes the same files under DIR

`data/probes/probes.jsonl` is not written here: `data/make_probes.py` filters the probe
candidates with the real model.
"""

from __future__ import annotations

import argparse
import json
import re
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SEED = 20261124
DATA_DIR = Path(__file__).resolve().parent

TICKET_SYSTEM = "Triage the support ticket. Reply with the JSON triage record only."
VOICE_SYSTEM = "You are Brightbrew Support. Reply to the customer in the Brightbrew house voice."

CATEGORIES = ("billing", "shipping", "returns", "technical", "account")
PRIORITIES = ("low", "normal", "high", "urgent")
PRODUCTS = ("grinder", "kettle", "scale", "subscription", "app", "gift_card")
SENTIMENTS = ("negative", "neutral", "positive")
PHYS = ("grinder", "kettle", "scale")  # the three physical products


def rng_for(name: str) -> random.Random:
    """A separate random stream per dataset, so editing one dataset does not reshuffle the others."""
    # str seeds are hashed with SHA-512 by `random`, so this is stable across runs and platforms.
    return random.Random(f"{SEED}-{name}")


# ============================================================================ template helpers

CHOICE = re.compile(r"\{([^{}]*\|[^{}]*)\}")  # "{a|b|c}" picks one option


def pick_choices(template: str, rng: random.Random) -> str:
    """Replace every `{a|b|c}` group by one of its options."""
    return CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def cap_sentences(text: str) -> str:
    """Capitalise the first letter of the text and of every sentence in it."""
    text = text[:1].upper() + text[1:]
    return re.sub(r"([.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def word_count(text: str) -> int:
    """Words, counted as white-space separated tokens."""
    return len(text.split())


# ============================================================================ tickets: names

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

# The name a reply uses for each product.
DISPLAY = {"grinder": "Aero grinder", "kettle": "Pour kettle", "scale": "Dot scale",
           "subscription": "bean subscription", "app": "Brightbrew app", "gift_card": "gift card"}

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


# ============================================================================ tickets: scenarios

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
]


# ============================================================================ tickets: phrasing

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
NON_URGENT_FORBIDDEN = re.compile(r"\b(asap|today|tonight|urgent(ly)?)\b", re.I)
ORDER_ID_PATTERN = re.compile(r"\bBB-\d{5}\b")


def pool(table: dict[str, list[str]], sentiment: str) -> list[str]:
    """The shared options of a phrase table plus those for one sentiment."""
    return table["any"] + table.get(sentiment, [])


def add_typos(text: str, rng: random.Random, rate: float, keep: frozenset = frozenset()) -> str:
    """Swap or drop one letter in some longer plain words (never in ids, numbers or cue words)."""
    pieces = re.split(r"(\s+)", text)
    for i, word in enumerate(pieces):
        core = word.rstrip(".,!?")
        if (len(core) < 5 or not core.isalpha() or core.lower() in PROTECTED | keep
                or rng.random() >= rate):
            continue
        j = rng.randrange(1, len(core) - 1)  # keep the first letter: words stay recognisable
        if rng.random() < 0.5:
            core = core[:j] + core[j + 1] + core[j] + core[j + 2:]
        else:
            core = core[:j] + core[j + 1:]
        pieces[i] = core + word[len(word.rstrip(".,!?")):]
    return "".join(pieces)


class Namer:
    """Expands [P] / [N] product placeholders: a full name first, short names after that."""

    def __init__(self, product: str, rng: random.Random):
        self.names, self.rng, self.used = PRODUCT_NAMES[product], rng, False

    def __call__(self, text: str) -> str:
        """Replace the placeholders in one sentence, left to right."""
        def one(m: re.Match) -> str:
            kind = "owned" if m.group(1) == "P" else "shop"
            name = self.rng.choice(self.names["short" if self.used else kind])
            self.used = True
            return name
        return re.sub(r"\[([PN])\]", one, text)


@dataclass
class Message:
    """A generated customer message and the facts behind it."""

    text: str
    scenario: Scenario
    product: str
    sentiment: str
    order_id: str | None
    first_name: str | None


def tone_sentence(sc: Scenario, product: str, sentiment: str, rng: random.Random
                  ) -> tuple[str | None, bool]:
    """The sentence that carries the sentiment (None when neutral), and whether it comes first."""
    if sentiment == "positive":
        own = PRAISE_PRODUCT[product] if sc.owned else []
        tone = rng.choice(own if own and rng.random() < 0.6 else PRAISE_GENERIC)
        return tone, rng.random() < 0.7
    if sentiment == "negative":
        options = (FRUSTRATION_QUESTION if sc.priority == "low" else
                   FRUSTRATION + (FRUSTRATION_URGENT if sc.priority == "urgent" else []))
        tone = rng.choice(options)
        return tone, rng.random() < 0.45
    return None, False


def body_sentences(sc: Scenario, product: str, sentiment: str, order_at: str | None,
                   order_id: str | None, intro: str | None, rng: random.Random
                   ) -> tuple[list[str], int | None]:
    """The body's sentence templates in reading order, and the position of the tone sentence."""
    tone, tone_first = tone_sentence(sc, product, sentiment, rng)
    parts: list[str] = []
    if rng.random() < 0.12:
        parts.append(rng.choice(POLITE_OPEN))
    if intro:
        parts.append(intro)
    tone_at = None
    if tone and tone_first:
        tone_at = len(parts)
        parts.append(tone)
    if sc.context and CONTEXT[product] and rng.random() < 0.45:
        parts.append(rng.choice(CONTEXT[product]))
    parts.append(rng.choice(sc.texts))
    # Extra, label-neutral sentences: most tickets have none, some have a few.
    extras = EXTRAS + (DETAILS[sc.category] if sc.priority != "low" else [])
    parts += rng.sample(extras, rng.choices([0, 1, 2, 3], weights=[55, 25, 12, 8])[0])
    moods = MOOD_EXTRAS[sentiment] if sc.priority != "low" else []
    if moods and rng.random() < 0.3:
        parts += rng.sample(moods, rng.choice([1, 1, 2]))
    if order_at == "inline":
        parts.append(rng.choice(ORDER_INLINE).format(oid=order_id))
    if rng.random() < (0.45 if sc.priority == "low" else 0.6):
        angry = ANGRY_ASKS if sentiment == "negative" and sc.priority == "high" else []
        parts.append(rng.choice(ASKS[sc.priority] + angry))
    if tone and not tone_first:
        tone_at = len(parts)
        parts.append(tone)
    return parts, tone_at


def sign_off(sentiment: str, want_name: bool, intro: bool, one_line: bool,
             first: str, full: str, rng: random.Random) -> str | None:
    """The closing line(s): named when the customer gives a name, sometimes anonymous."""
    if want_name and not intro:
        signoff = rng.choice(ONE_LINE_SIGNOFF if one_line else pool(SIGNOFF_NAMED, sentiment))
    elif not want_name and rng.random() < 0.3 and pool(SIGNOFF_ANON, sentiment):
        signoff = rng.choice(pool(SIGNOFF_ANON, sentiment))
    else:
        return None
    return signoff.format(first=first, full=full)


def lay_out(greeting: str | None, parts: list[str], signoff: str | None, one_line: bool,
            rng: random.Random) -> str:
    """Join greeting, body and sign-off: on one line, or as short paragraphs."""
    if one_line:
        return " ".join(x for x in [greeting, *parts, signoff] if x)
    body = " ".join(parts)
    if len(parts) >= 4 and rng.random() < 0.35:  # sometimes two short paragraphs
        cut = rng.randrange(2, len(parts))
        body = " ".join(parts[:cut]) + "\n\n" + " ".join(parts[cut:])
    joiner = " " if rng.random() < 0.3 else "\n\n"
    return (greeting + joiner if greeting else "") + body + ("\n\n" + signoff if signoff else "")


def restyle(text: str, sentiment: str, order_id: str | None, keep: frozenset,
            rng: random.Random) -> str:
    """Casing and typos, as real customers write; the order id is kept verbatim in every case."""
    style = rng.random()
    if style < 0.10:
        text = text.lower()
    elif style < 0.13 and sentiment == "negative":
        text = text.upper()
    if rng.random() < 0.3:
        text = add_typos(text, rng, rate=0.06, keep=keep)
    if order_id:
        text = re.sub(re.escape(order_id), order_id, text, flags=re.I)
    return text


def compose_message(sc: Scenario, product: str, sentiment: str, order_id: str | None,
                    rng: random.Random, want_name: bool | None = None) -> Message:
    """Write one customer message for a scenario; the labels follow from what it says."""
    namer = Namer(product, rng)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    full = f"{first} {last}"
    if want_name is None:
        want_name = rng.random() < 0.45
    intro = None
    if want_name and rng.random() < 0.15:
        intro = rng.choice([f"{first} here.", f"This is {full}.", f"My name is {full}."])
    order_at = rng.choice(["inline"] * 7 + ["top"] * 2 + ["bottom"]) if order_id else None
    parts, tone_at = body_sentences(sc, product, sentiment, order_at, order_id, intro, rng)
    # Expand choices and product names in reading order: the first mention gets a full name.
    parts = [cap_sentences(namer(pick_choices(p, rng))) for p in parts]
    if sentiment == "negative" and rng.random() < 0.3:  # shouting the tone sentence
        parts[tone_at] = parts[tone_at].upper()
    one_line = rng.random() < 0.25
    greeting = rng.choice(pool(GREETINGS, sentiment)) if rng.random() < 0.55 else None
    signoff = sign_off(sentiment, want_name, bool(intro), one_line, first, full, rng)
    text = lay_out(greeting, parts, signoff, one_line, rng)
    if order_at == "top":
        text = rng.choice(ORDER_TOP).format(oid=order_id) + "\n\n" + text
    elif order_at == "bottom":
        text += "\n\n" + rng.choice(["Order: {oid}", "Order ref {oid}", "#{oid}"]).format(oid=order_id)
    text = restyle(text, sentiment, order_id, frozenset({first.lower(), last.lower()}), rng)
    return Message(text, sc, product, sentiment, order_id, first if want_name else None)


# ============================================================================ tickets: the set

TICKETS_PER_CATEGORY = 128      # 5 x 128 = 640 tickets; 12 + 12 per category held out: 520/60/60
PRIORITY_PLAN = {"low": 28, "normal": 42, "high": 40, "urgent": 18}
# Sentiment given priority: praise never comes with a high/urgent problem.
SENTIMENT_PLAN = {
    "low": {"positive": 17, "neutral": 9, "negative": 2},
    "normal": {"positive": 13, "neutral": 17, "negative": 12},
    "high": {"positive": 0, "neutral": 14, "negative": 26},
    "urgent": {"positive": 0, "neutral": 6, "negative": 12},
}
PRODUCT_PLAN = {
    "billing": {"subscription": 40, "gift_card": 30, "grinder": 20, "kettle": 19, "scale": 19},
    "shipping": {"grinder": 30, "kettle": 30, "scale": 30, "subscription": 24, "gift_card": 14},
    "returns": {"grinder": 30, "kettle": 30, "scale": 30, "subscription": 28, "gift_card": 10},
    "technical": {"grinder": 30, "kettle": 30, "scale": 30, "app": 38},
    "account": {"app": 70, "subscription": 30, "gift_card": 28},
}


def triage_record(category: str, priority: str, product: str, order_id: str | None,
                  sentiment: str) -> str:
    """The assistant answer: the JSON record, keys in the fixed order."""
    record = {"category": category, "priority": priority, "product": product,
              "order_id": order_id, "sentiment": sentiment}
    return json.dumps(record)


def plan_slots(category: str, size: int, rng: random.Random, need_reply: bool = False
               ) -> list[tuple[Scenario, str, str]]:
    """(scenario, product, sentiment) for every row of one category, balanced to the plans."""
    scale = size / TICKETS_PER_CATEGORY
    slots: list[tuple[str, str]] = []
    for priority, n in PRIORITY_PLAN.items():
        sentiments = [s for s, k in SENTIMENT_PLAN[priority].items() for _ in range(k)]
        rng.shuffle(sentiments)
        count = round(n * scale)
        slots += [(priority, sentiments[i % len(sentiments)]) for i in range(count)]
    slots = slots[:size] + [slots[-1]] * (size - len(slots))
    rng.shuffle(slots)
    quota = {p: round(k * scale) for p, k in PRODUCT_PLAN[category].items()}
    used: Counter = Counter()
    out = []
    for priority, sentiment in slots:
        cell = [s for s in SCENARIOS if s.category == category and s.priority == priority
                and (s.reply or not need_reply)]
        available = sorted({p for s in cell for p in s.products})
        # Greedy: the product furthest below its quota (ties broken at random).
        product = max(available, key=lambda p: (quota.get(p, 0), rng.random()))
        quota[product] = quota.get(product, 0) - 1
        # The least-used scenario for this product, so every template gets its turn.
        fits = [s for s in cell if product in s.products]
        sc = min(fits, key=lambda s: (used[id(s)], rng.random()))
        used[id(sc)] += 1
        out.append((sc, product, sentiment))
    return out


def make_tickets() -> dict[str, list[dict]]:
    """The 640 triage tickets, split 520/60/60 stratified by category."""
    rng = rng_for("tickets")
    order_ids = [f"BB-{n}" for n in rng.sample(range(10000, 100000), 2000)]
    plan = [(c, *slot) for c in CATEGORIES for slot in plan_slots(c, TICKETS_PER_CATEGORY, rng)]
    rng.shuffle(plan)  # ids do not reveal the category
    rows, seen = [], set()
    for n, (category, sc, product, sentiment) in enumerate(plan, start=1):
        while True:
            order_id = order_ids.pop() if rng.random() < sc.order else None
            msg = compose_message(sc, product, sentiment, order_id, rng)
            if msg.text not in seen:
                break
        seen.add(msg.text)
        check_ticket_text(msg.text, sc.priority, order_id)
        rows.append({
            "id": f"t{n:04d}", "label": category,
            "messages": [
                {"role": "system", "content": TICKET_SYSTEM},
                {"role": "user", "content": msg.text},
                {"role": "assistant", "content": triage_record(
                    category, sc.priority, product, order_id, sentiment)},
            ],
        })
    return stratified_split(rows, rng, group=lambda r: r["label"], n_val=12, n_test=12)


def check_ticket_text(text: str, priority: str, order_id: str | None) -> None:
    """Fail fast if a generated text contradicts its labels."""
    found = ORDER_ID_PATTERN.findall(text)
    assert found == ([order_id] if order_id else []), (text, order_id)
    if priority != "urgent":
        assert not NON_URGENT_FORBIDDEN.search(text), text


def stratified_split(rows: list[dict], rng: random.Random, group, n_val: int, n_test: int
                     ) -> dict[str, list[dict]]:
    """Train/val/test with n_val and n_test rows of every group held out; rows keep id order."""
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for name in sorted({group(r) for r in rows}):
        members = [r for r in rows if group(r) == name]
        rng.shuffle(members)
        splits["val"] += members[:n_val]
        splits["test"] += members[n_val:n_val + n_test]
        splits["train"] += members[n_val + n_test:]
    return {name: sorted(part, key=lambda r: r["id"]) for name, part in splits.items()}


# ============================================================================ house voice

VOICE_PER_CATEGORY = 60         # 5 x 60 = 300 pairs; 6 + 6 per category held out: 240/30/30
SIGN_OFF = "— Brightbrew Support"
BANNED = ("unfortunately", "we apologize for any inconvenience", "valued customer")
# "One concrete next step with a timeframe": the reply must name when something happens.
TIMEFRAME = re.compile(
    r"\bwithin (\d+( to \d+)?|one|two|three|a few) (working |business )?(minutes?|hours?|days?|weeks?)\b"
    r"|\b(today|tomorrow)\b|\bby (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday)\b", re.I)
MAX_BODY_WORDS = 60


def voice_problems(reply: str) -> list[str]:
    """The house-voice rules a reply breaks (empty list: it follows them all)."""
    problems = []
    lines = reply.split("\n")
    if not re.fullmatch(r"Hi ([A-Z][a-z'-]+|there),", lines[0]):
        problems.append("greeting")
    if lines[-1] != SIGN_OFF:
        problems.append("sign-off")
    body = "\n".join(lines[1:-1]).strip()
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", body) if s]
    if not 2 <= len(sentences) <= 4:
        problems.append("sentence count")
    if word_count(body) > MAX_BODY_WORDS:
        problems.append("too long")
    if "!" in reply:
        problems.append("exclamation mark")
    if any(b in reply.lower() for b in BANNED):
        problems.append("banned phrase")
    if not TIMEFRAME.search(body):
        problems.append("no timeframe")
    if not reply.isascii() and any(ord(c) > 0x2000 and c != "—" for c in reply):
        problems.append("emoji or symbol")
    return problems


ACKS = {
    "negative": ["I'm sorry about the trouble with your <prod>.", "I'm sorry this has been such a hassle.",
                 "I'm sorry, that's not the experience we want you to have.",
                 "Thanks for your patience, and I'm sorry for the trouble."],
    "negative_low": ["Sorry that was hard to find on our site.",
                     "You're right, our site should make that clearer."],
    "neutral": ["Thanks for getting in touch.", "Thanks for the clear details.",
                "Thanks for letting us know.", "Thanks for your message."],
    "positive": ["Thanks for the kind words.", "Thank you, that's lovely to hear.",
                 "That's so kind of you to say."],
    "positive_owned": ["So glad you're enjoying the <prod>.", "It's lovely to hear you like the <prod>."],
}
CLOSERS = ["Reply here if anything else comes up.", "I'm here if you need anything else.",
           "Just reply to this email if you have questions.",
           "Let me know if there's anything else I can do."]


def house_reply(msg: Message, rng: random.Random) -> str:
    """The chosen reply: greeting, 2-4 short sentences with a dated next step, sign-off."""
    sc = msg.scenario
    if msg.sentiment == "negative":
        acks = ACKS["negative_low" if sc.priority == "low" else "negative"]
    elif msg.sentiment == "positive":
        acks = ACKS["positive"] + (ACKS["positive_owned"] if sc.owned and sc.priority == "low" else [])
    else:
        acks = ACKS["neutral"]
    core = pick_choices(rng.choice(sc.reply), rng)
    if "<prod>" in core:  # name the product once, not in two sentences running
        acks = [a for a in acks if "<prod>" not in a]
    sentences = [rng.choice(acks)] if rng.random() < (0.6 if msg.sentiment == "neutral" else 0.9) else []
    sentences.append(core)
    if rng.random() < 0.35:
        sentences.append(rng.choice(CLOSERS))
    body = " ".join(sentences).replace("<prod>", DISPLAY[msg.product])
    if len(re.split(r"(?<=[.?])\s+", body)) < 2:
        body += " " + rng.choice(CLOSERS)
    while word_count(body) > MAX_BODY_WORDS or len(re.split(r"(?<=[.?])\s+", body)) > 4:
        body = " ".join(re.split(r"(?<=[.?])\s+", body)[:-1])  # drop the closing sentence
    greeting = f"Hi {msg.first_name}," if msg.first_name else "Hi there,"
    reply = f"{greeting}\n\n{body}\n\n{SIGN_OFF}"
    assert not voice_problems(reply), (reply, voice_problems(reply))
    return reply


GENERIC_OPEN = ["Dear valued customer,", "Dear Customer,", "Dear Sir or Madam,", "Greetings,",
                "Hello,", "Dear {first},"]
GENERIC_TOPIC = {"billing": "billing enquiry", "shipping": "delivery enquiry",
                 "returns": "return request", "technical": "enquiry about your <prod>",
                 "account": "account enquiry"}
GENERIC_FIRST = ["Thank you for contacting Brightbrew Customer Care regarding your recent {topic}.",
                 "Thank you for reaching out to us about your {topic}.",
                 "We have received your message regarding your {topic}.",
                 "Thank you for taking the time to contact us concerning your {topic}."]
GENERIC_MIDDLE = [
    "We apologize for any inconvenience this may have caused.",
    "Your satisfaction is our highest priority and we truly value your business.",
    "Unfortunately, we are unable to provide further details at this time.",
    "Please be advised that your request has been forwarded to the relevant department for review.",
    "A member of our team will be in touch in due course.",
    "We appreciate your patience and understanding in this matter.",
    "Please refer to our Terms and Conditions for further information regarding our policies.",
    "We are committed to providing an exceptional customer experience at every stage.",
    "Rest assured that we take all customer feedback very seriously.",
    "As a valued customer, your feedback is extremely important to us.",
    "Please note that processing times may vary depending on a number of factors.",
    "We kindly ask that you allow sufficient time for your request to be processed.",
    "Unfortunately, we are experiencing a higher than usual volume of enquiries.",
]
GENERIC_END = ["Please do not hesitate to contact us should you require any further assistance.",
               "Should you have any further questions, please do not hesitate to get in touch.",
               "Thank you for choosing Brightbrew."]
GENERIC_CLOSE = ["Kind regards,\nThe Brightbrew Customer Care Team", "Sincerely,\nCustomer Support Department",
                 "Best regards,\nBrightbrew Support Team", "Warm regards,\nCustomer Experience Team",
                 SIGN_OFF]
CASUAL_OPEN = ["Hey {first}!!", "Heyyy {first} 👋", "Yo {first}!", "Hiya {first}!", "OMG hi {first}!"]
CASUAL_OPEN_ANON = ["Hey there!!", "Heyyy 👋", "Hiya!", "Hey hey!"]
CASUAL_REACT = {"negative": ["Ugh, that's the worst 😬", "Yikes!! So sorry lol.", "Oof, our bad!! 🙈"],
                "positive": ["Aww thank u!! 🥰", "Yesss love that!! ☕☕", "You're the best!!"],
                "neutral": ["No worries!", "Gotcha 👍", "Ooh good q!"]}
CASUAL_CORE = {
    "billing": ["Money stuff is such a pain, we'll sort it out soon-ish!",
                "We'll fix the payment thingy, promise 🤞"],
    "shipping": ["Couriers, am I right?? 🙄 It'll turn up eventually!",
                 "Your parcel is def on its way somewhere lol."],
    "returns": ["Just chuck it back in a box and send it over, easy peasy!",
                "Returns are super chill, no stress!!"],
    "technical": ["Have you tried turning it off and on again? 😂",
                  "Give it a good shake, that usually works lol."],
    "account": ["Passwords are the worst haha, just try again!",
                "Logins, ugh!! Try clearing your cookies or whatever 🤷"],
    "any": ["I'll get it sorted within 2 days, pinky promise!! 🤞",
            "Leave it with me, we'll get back to you super soon!"],
}
CASUAL_CLOSE = ["Cheers!! ☕", "Later! ✌️", "xoxo the Brightbrew crew 💛", "Stay caffeinated!! ☕🔥",
                SIGN_OFF]
CURT = ["That's covered in our FAQ.", "Please read the manual.", "We've already answered this.",
        "Policy is policy.", "Nothing we can do about that.",
        "That's not something we can help with.", "Check the website.",
        "It says so on the order page.", "Send it back if you don't want it.",
        "Couriers are not our responsibility.", "That's how the product works.",
        "Try again later."]
CURT_OPEN = ["{first},", "Hi {first},", "Hello.", ""]
CURT_CLOSE = [SIGN_OFF, "Support", "", "Regards"]


def rejected_reply(msg: Message, kind: str, rng: random.Random) -> str:
    """A reply that breaks the house voice: stiff boilerplate, or too casual / curt."""
    first = msg.first_name or "Customer"
    if kind == "generic":
        opener = rng.choice(GENERIC_OPEN if msg.first_name else GENERIC_OPEN[:-1])
        if rng.random() < 0.25:
            opener = f"Hi {msg.first_name}," if msg.first_name else "Hi there,"
        topic = GENERIC_TOPIC[msg.scenario.category]
        body = [rng.choice(GENERIC_FIRST).format(topic=topic),
                *rng.sample(GENERIC_MIDDLE, rng.randint(3, 5)), rng.choice(GENERIC_END)]
        text = (opener.format(first=first) + "\n\n" + " ".join(body) + "\n\n"
                + rng.choice(GENERIC_CLOSE))
    elif rng.random() < 0.6:  # off-brand: far too casual
        opener = rng.choice(CASUAL_OPEN if msg.first_name else CASUAL_OPEN_ANON)
        core = CASUAL_CORE[msg.scenario.category] + CASUAL_CORE["any"]
        body = [rng.choice(CASUAL_REACT[msg.sentiment]), rng.choice(core)]
        text = (opener.format(first=first) + " " + " ".join(body) + "\n\n"
                + rng.choice(CASUAL_CLOSE))
    else:  # off-brand: curt and dismissive
        opener = rng.choice(CURT_OPEN if msg.first_name else ["Hello.", ""])
        body = " ".join(rng.sample(CURT, rng.randint(1, 2)))
        close = rng.choice(CURT_CLOSE)
        text = "\n\n".join(x for x in [opener.format(first=first), body, close] if x)
    text = text.replace("<prod>", DISPLAY[msg.product])
    assert voice_problems(text), text  # every rejected reply must break a rule
    return text


def make_voice() -> dict[str, list[dict]]:
    """300 customer messages, each with a house-voice reply and an off-voice one."""
    rng = rng_for("voice")
    plan = [(c, *slot) for c in CATEGORIES
            for slot in plan_slots(c, VOICE_PER_CATEGORY, rng, need_reply=True)]
    rng.shuffle(plan)
    kinds = ["generic", "off_brand"] * (len(plan) // 2)
    rng.shuffle(kinds)
    order_ids = [f"BB-{n}" for n in rng.sample(range(10000, 100000), 1000)]
    rows, seen = [], set()
    for n, ((category, sc, product, sentiment), kind) in enumerate(zip(plan, kinds), start=1):
        while True:
            order_id = order_ids.pop() if rng.random() < sc.order else None
            msg = compose_message(sc, product, sentiment, order_id, rng,
                                  want_name=rng.random() < 0.7)
            if msg.text not in seen:
                break
        seen.add(msg.text)
        prompt = [{"role": "system", "content": VOICE_SYSTEM}, {"role": "user", "content": msg.text}]
        rows.append({
            "id": f"v{n:03d}", "prompt": prompt,
            "chosen": [{"role": "assistant", "content": house_reply(msg, rng)}],
            "rejected": [{"role": "assistant", "content": rejected_reply(msg, kind, rng)}],
            "rejected_kind": kind, "_category": category,
        })
    splits = stratified_split(rows, rng, group=lambda r: r["_category"], n_val=6, n_test=6)
    for part in splits.values():
        for row in part:
            del row["_category"]
    return splits


def sft_row(pair: dict) -> dict:
    """The SFT view of a preference pair: the prompt followed by the chosen reply."""
    return {"id": pair["id"], "messages": pair["prompt"] + pair["chosen"]}


# ============================================================================ handbook

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


def fact_value(fact: Fact, version: int) -> str:
    """The fact's value as written in handbook version 1 or 2."""
    return fact.value_v2 if version == 2 and fact.value_v2 else fact.value


def handbook_sections(version: int) -> list[dict]:
    """The handbook's sections with the values of one version filled in."""
    facts = {f.id: f for f in FACTS}
    out = []
    for sid, title, template in SECTIONS:
        text = re.sub(r"\{([a-z_]+\.[a-z_]+)\}",
                      lambda m: fact_value(facts[m.group(1)], version), template)
        assert 60 <= word_count(text) <= 150, (sid, word_count(text))
        out.append({"id": sid, "title": title, "text": text})
    return out


def handbook_markdown(sections: list[dict], version: int) -> str:
    """The handbook as one Markdown file: a title, an intro line, one `## ` section each."""
    parts = ["# Brightbrew Handbook", HANDBOOK_INTRO[version]]
    parts += [f"## {s['title']}\n\n{s['text']}" for s in sections]
    return "\n\n".join(parts) + "\n"


def question_row(qid: str, fact: Fact, question: str, version: int = 1) -> dict:
    """A handbook question with its reference answer and accepted answer strings."""
    value = fact_value(fact, version)
    row = {"id": qid, "section": fact.id.split(".")[0], "fact": fact.id, "seen_fact": fact.seen,
           "accept": list(fact.accept_v2 if version == 2 else fact.accept),
           "messages": [{"role": "user", "content": question},
                        {"role": "assistant", "content": fact.answer.format(v=value)}]}
    if version == 2:
        row["old_accept"] = list(fact.accept)
    return row


def make_handbook() -> dict[str, object]:
    """Handbook v1 and v2 (sections + Markdown) and the train/test/changed questions."""
    rng = rng_for("handbook")
    train, test, changed = [], [], []
    n = 0
    for fact in FACTS:
        # Seen facts: one of the three paraphrases (chosen at random) is held out for test.
        held_out = rng.randrange(len(fact.questions)) if fact.seen else None
        for i, question in enumerate(fact.questions):
            n += 1
            row = question_row(f"h{n:03d}", fact, question)
            (train if fact.seen and i != held_out else test).append(row)
    for i, fact in enumerate([f for f in FACTS if f.value_v2], start=1):
        changed.append(question_row(f"hc{i:02d}", fact, fact.changed_question, version=2))
    v1, v2 = handbook_sections(1), handbook_sections(2)
    return {"handbook.md": handbook_markdown(v1, 1), "sections.jsonl": v1,
            "handbook_v2.md": handbook_markdown(v2, 2), "sections_v2.jsonl": v2,
            "questions_train.jsonl": train, "questions_test.jsonl": test,
            "questions_changed.jsonl": changed}


# ============================================================================ probes

# Very easy general questions; data/make_probes.py keeps those the base model gets right.
# Left out after a first run: questions the 135M model answered wrongly while still containing
# an accepted word ("Kepler-41B, similar to Earth"), which would make the probe meaningless.
PROBES: list[tuple[str, list[str], str]] = [
    ("What is the capital of France?", ["Paris"], "Paris."),
    ("What is the capital of Japan?", ["Tokyo"], "Tokyo."),
    ("What is the capital of Italy?", ["Rome"], "Rome."),
    ("What is the capital of Germany?", ["Berlin"], "Berlin."),
    ("What is the capital of Spain?", ["Madrid"], "Madrid."),
    ("What is the capital of England?", ["London"], "London."),
    ("What is the capital of the United States?", ["Washington"], "Washington, D.C."),
    ("What is the capital of Canada?", ["Ottawa"], "Ottawa."),
    ("What is the capital of Egypt?", ["Cairo"], "Cairo."),
    ("What is the capital of Russia?", ["Moscow"], "Moscow."),
    ("What is the capital of China?", ["Beijing"], "Beijing."),
    ("What is the capital of Greece?", ["Athens"], "Athens."),
    ("What is the capital of Portugal?", ["Lisbon"], "Lisbon."),
    ("How many days are there in a week?", ["7", "seven"], "There are 7 days in a week."),
    ("How many months are there in a year?", ["12", "twelve"], "There are 12 months in a year."),
    ("How many hours are there in a day?", ["24", "twenty-four"], "There are 24 hours in a day."),
    ("How many minutes are there in an hour?", ["60", "sixty"], "There are 60 minutes in an hour."),
    ("How many seconds are there in a minute?", ["60", "sixty"], "There are 60 seconds in a minute."),
    ("How many legs does a spider have?", ["8 legs", "eight legs", "8"], "A spider has 8 legs."),
    ("How many legs does a dog have?", ["4", "four"], "A dog has 4 legs."),
    ("How many wheels does a bicycle have?", ["2", "two"], "A bicycle has 2 wheels."),
    ("How many sides does a triangle have?", ["3", "three"], "A triangle has 3 sides."),
    ("How many continents are there?", ["7", "seven"], "There are 7 continents."),
    ("How many letters are in the English alphabet?", ["26", "twenty-six"], "There are 26 letters."),
    ("What is 2 + 3?", ["5", "five"], "2 + 3 = 5."),
    ("What is 1 + 1?", ["2", "two"], "1 + 1 = 2."),
    ("What is 10 + 10?", ["20", "twenty"], "10 + 10 = 20."),
    ("What is 4 + 4?", ["8", "eight"], "4 + 4 = 8."),
    ("What is 5 times 5?", ["25", "twenty-five"], "5 times 5 is 25."),
    ("What is 3 + 4?", ["7", "seven"], "3 + 4 = 7."),
    ("What is 10 minus 3?", ["7", "seven"], "10 minus 3 is 7."),
    ("What is 2 times 3?", ["6", "six"], "2 times 3 is 6."),
    ("What is 100 divided by 10?", ["10", "ten"], "100 divided by 10 is 10."),
    ("What is half of 10?", ["5", "five"], "Half of 10 is 5."),
    ("What is 6 + 6?", ["12", "twelve"], "6 + 6 = 12."),
    ("What is the opposite of hot?", ["cold"], "Cold."),
    ("What is the opposite of up?", ["down"], "Down."),
    ("What is the opposite of big?", ["small", "little", "tiny"], "Small."),
    ("What is the opposite of day?", ["night"], "Night."),
    ("What is the opposite of happy?", ["sad", "unhappy"], "Sad."),
    ("What is the opposite of fast?", ["slow"], "Slow."),
    ("What is the opposite of light?", ["dark", "heavy"], "Dark."),
    ("What is the opposite of full?", ["empty"], "Empty."),
    ("What is the opposite of wet?", ["dry"], "Dry."),
    ("What is the opposite of good?", ["bad"], "Bad."),
    ("What is the opposite of black?", ["white"], "White."),
    ("What is the opposite of old?", ["young", "new"], "Young (or new)."),
    ("What colour is the sky on a clear day?", ["blue"], "Blue."),
    ("What colour is grass?", ["green"], "Green."),
    ("What colour is snow?", ["white"], "White."),
    ("What colour is a ripe banana?", ["yellow"], "Yellow."),
    ("What colour is a ripe tomato?", ["red"], "Red."),
    ("What colour do you get when you mix blue and yellow?", ["green"], "Green."),
    ("What colour is a stop sign?", ["red"], "Red."),
    ("What do bees make?", ["honey"], "Honey."),
    ("What do chickens lay?", ["egg"], "Eggs."),
    ("What is frozen water called?", ["ice"], "Ice."),
    ("What is H2O commonly called?", ["water"], "Water."),
    ("What is the largest planet in our solar system?", ["Jupiter"], "Jupiter."),
    ("Which planet is known as the Red Planet?", ["Mars"], "Mars."),
    ("What is the star at the centre of our solar system?", ["Sun"], "The Sun."),
    ("What is the largest ocean on Earth?", ["Pacific"], "The Pacific Ocean."),
    ("Which animal says moo?", ["cow"], "A cow."),
    ("Which animal says woof?", ["dog"], "A dog."),
    ("Which animal says meow?", ["cat"], "A cat."),
    ("What is a baby dog called?", ["puppy", "pup"], "A puppy."),
    ("Which animal is known as the king of the jungle?", ["lion"], "The lion."),
    ("What is the tallest animal in the world?", ["giraffe"], "The giraffe."),
    ("What is the fastest land animal?", ["cheetah"], "The cheetah."),
    ("What is the largest mammal?", ["whale"], "The blue whale."),
    ("What do caterpillars turn into?", ["butterfl", "moth"], "Butterflies or moths."),
    ("Where do fish live?", ["water", "sea", "ocean", "river", "lake"], "In water."),
    ("What gas do humans need to breathe to live?", ["oxygen"], "Oxygen."),
    ("What language is spoken in France?", ["French"], "French."),
    ("What language is spoken in Spain?", ["Spanish"], "Spanish."),
    ("What season comes after winter?", ["spring"], "Spring."),
    ("What season comes after spring?", ["summer"], "Summer."),
    ("Which month comes after January?", ["February"], "February."),
    ("Which month comes before December?", ["November"], "November."),
    ("What day comes after Monday?", ["Tuesday"], "Tuesday."),
    ("What day comes before Friday?", ["Thursday"], "Thursday."),
    ("What is the plural of mouse?", ["mice"], "Mice."),
    ("What is a house made of ice blocks called?", ["igloo"], "An igloo."),
    ("What do you use to cut paper?", ["scissors"], "Scissors."),
    ("What instrument has 88 black and white keys?", ["piano"], "The piano."),
    ("What is the currency of the United States?", ["dollar"], "The US dollar."),
    ("What shape is a ball?", ["round", "sphere", "circle"], "Round: a sphere."),
    ("What fruit is famous for keeping the doctor away?", ["apple"], "An apple."),
    ("At what temperature in Celsius does water boil at sea level?", ["100"], "100 degrees Celsius."),
    ("What do plants need from the sky to grow?", ["sun", "rain", "water"], "Sunlight and rain."),
    ("What do you call the meal eaten in the morning?", ["breakfast"], "Breakfast."),
    ("How many eyes does a person have?", ["2", "two"], "A person has 2 eyes."),
]


def make_probe_candidates() -> list[dict]:
    """The probe candidates in a fixed order; make_probes.py filters them with the model."""
    return [{"id": f"p{i:03d}", "accept": accept,
             "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, accept, a) in enumerate(PROBES, start=1)]


# ============================================================================ writing

def jsonl(rows: list[dict]) -> str:
    """Rows as JSON Lines: one object per line, UTF-8 kept readable, "\\n" line endings."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(out: Path, rel: str, content: str | list[dict], note: str = "") -> None:
    """Write one file under `out` (JSONL for a list of rows) and print a one-line summary."""
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    text = jsonl(content) if isinstance(content, list) else content
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    size = f"{len(content)} rows" if isinstance(content, list) else f"{text.count(chr(10))} lines"
    print(f"{rel:<36} {size:>10}  {note}")


def main(argv: list[str] | None = None) -> None:
    """Regenerate every dataset file under --out (default: this data/ folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: data/)")
    out = parser.parse_args(argv).out
    tickets = make_tickets()
    for name, rows in tickets.items():
        labels = Counter(r["label"] for r in rows)
        write(out, f"tickets/{name}.jsonl", rows, " ".join(f"{k}={labels[k]}" for k in CATEGORIES))
    voice = make_voice()
    for name, rows in voice.items():
        kinds = Counter(r["rejected_kind"] for r in rows)
        write(out, f"voice/pairs_{name}.jsonl", rows, f"generic={kinds['generic']} off_brand={kinds['off_brand']}")
        write(out, f"voice/sft_{name}.jsonl", [sft_row(r) for r in rows])
    for rel, content in make_handbook().items():
        note = ""
        if rel.startswith("questions") and isinstance(content, list):
            note = f"seen_fact={sum(r['seen_fact'] for r in content)}"
        write(out, f"handbook/{rel}", content, note)
    write(out, "probes/candidates.jsonl", make_probe_candidates(), "filter: data/make_probes.py")


if __name__ == "__main__":
    main()
